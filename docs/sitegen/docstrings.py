"""Parts of the code shown on pages: a literal block or a table of a module docstring, a definition's source.

``<!-- @docstring-block raft/net_frames.py 1 -->`` shows the first literal
block (``::``) of a module docstring, ``<!-- @docstring-table
raft/kv/service.py "Request" "What it does" -->`` its first simple table, and
``<!-- @excerpt raft.raft.RaftLoops.run_follower -->`` the code of one
definition. The reStructuredText is read by docs/rst_docstrings.py, which also
renders the docstrings of the API pages.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from types import ModuleType

from .code_index import CodeIndex
from .common import DOCS, code_words, fence_for, log
from .links import code_href


def rst() -> ModuleType:
    """docs/rst_docstrings.py, which also turns docstrings into Markdown for mkdocstrings."""
    module = sys.modules.get("raft_docs_rst")
    if module is None:
        spec = importlib.util.spec_from_file_location("raft_docs_rst", DOCS / "rst_docstrings.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["raft_docs_rst"] = module
        spec.loader.exec_module(module)
    return module


def module_docstring(path: str, index: CodeIndex) -> str:
    """The docstring of the module at ``path`` (``raft/net_frames.py``)."""
    module = index.modules.get(path)
    if module is None:
        log.warning("no module %s in raft/", path)
        return ""
    return module.docstring


def _from_docstring(page_src: str, index: CodeIndex, path: str) -> str:
    module = index.modules[path]
    return f"*From the docstring of [`{path}`]({code_href(page_src, module)}).*\n"


def docstring_block(page_src: str, index: CodeIndex, args: str) -> str:
    """``<!-- @docstring-block raft/net_frames.py 1 -->``: the Nth literal block (``::``) of a module docstring."""
    path, number = [*shlex.split(args), "1"][:2]
    blocks = rst().literal_blocks(module_docstring(path, index))
    if not number.isdigit() or not 1 <= int(number) <= len(blocks):
        log.warning("%s asks for literal block %s of %s's docstring, which has %d", page_src, number, path,
                    len(blocks))
        return ""
    block = blocks[int(number) - 1]
    fence = fence_for(block)
    return f'{fence}text title="{path}, from its docstring"\n{block}\n{fence}\n\n' + _from_docstring(
        page_src, index, path)


def docstring_table(page_src: str, index: CodeIndex, args: str) -> str:
    """``<!-- @docstring-table raft/kv/service.py "Request" "What it does" -->``: the first simple table
    of a module docstring, as a Markdown table with the given column headers."""
    path, *headers = shlex.split(args)
    tables = rst().simple_tables(module_docstring(path, index))
    if not tables:
        log.warning("%s asks for a table from %s's docstring, which has none", page_src, path)
        return ""
    table = tables[0]
    if headers and len(headers) != len(table.rows[0]):
        log.warning("%s gives %d headers for a table of %d columns", page_src, len(headers), len(table.rows[0]))
    rows = [[code_words(text) for text in row] for row in table.rows]
    return rst().markdown_table(headers or table.header, rows) + "\n\n" + _from_docstring(page_src, index, path)


def excerpt(target: str, index: CodeIndex, page_src: str) -> str:
    """The source of one definition, as a code block titled with its file (shown, not run)."""
    definition = index.resolve(target)
    if definition is None:
        return ""
    lines = index.sources[definition.path].splitlines()[definition.line - 1:definition.end_line]
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    body = "\n".join(line[indent:] for line in lines)
    fence = fence_for(body)
    href = code_href(page_src, definition)
    return (f'{fence}python title="{definition.path}, lines {definition.line}–{definition.end_line} '
            f'(the library\'s own code, shown here, not run)"\n{body}\n{fence}\n\n'
            f"[Open `{definition.name}` in its file]({href})\n")
