"""Links from a page to a line of code: ``[text](code:run_follower)`` and the links the maps write.

Every module of ``raft/`` has a source page (``source/raft/raft.md``) whose
lines carry anchors (``#__codelineno-0-216``). A page names a definition as
``code:run_follower``, ``code:raft.raft.RaftLoops.run_follower`` or
``code:raft/raft.py``; the name becomes a relative link to its line, and an
unknown or ambiguous name fails the build.
"""

from __future__ import annotations

import posixpath
import re

from .code_index import CodeIndex, Definition
from .common import outside_code

CODE_LINK = re.compile(r"\]\(code:(?P<target>[^)\s#]+)\)")


def source_page(path: str) -> str:
    """``raft/raft.py`` -> ``source/raft/raft.md``."""
    return "source/" + path[:-3] + ".md"


def relative_href(page_src: str, target: str) -> str:
    """A link from the page ``page_src`` to ``target``, both relative to docs/."""
    return posixpath.relpath(target, posixpath.dirname(page_src) or ".")


def code_href(page_src: str, definition: Definition, line: int | None = None) -> str:
    """A relative link from the page ``page_src`` to a line of a source page."""
    href = relative_href(page_src, source_page(definition.path))
    line = line or definition.line
    return f"{href}#__codelineno-0-{line}" if line > 1 else href


def code_link(page_src: str, definition: Definition, text: str | None = None, line: int | None = None) -> str:
    """``[`text`](link to the line)``; the text defaults to the definition's name."""
    return f"[`{text or definition.name}`]({code_href(page_src, definition, line)})"


def resolve_code_links(markdown: str, page_src: str, index: CodeIndex) -> str:
    """Turn every ``](code:name)`` outside code into a link to the definition's line."""
    def replace(match: re.Match[str]) -> str:
        definition = index.resolve(match["target"])
        if definition is None:
            return match[0]
        return f"]({code_href(page_src, definition)})"

    return outside_code(markdown, lambda text: CODE_LINK.sub(replace, text))
