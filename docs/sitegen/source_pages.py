"""One page per module of ``raft/``, with its code and line numbers, and the "Source code" index page.

The pages are generated in memory (MkDocs' ``File.generated``); nothing is
written into docs/. The maps and tutorials link to their line anchors.
"""

from __future__ import annotations

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

from .code_index import CodeIndex, Definition
from .common import code_words, fence_for
from .links import source_page


def nav_section(index: CodeIndex) -> dict[str, list[str | dict[str, str]]]:
    """The "Source code" section appended to the site's navigation: the index page, then one page per module."""
    pages: list[str | dict[str, str]] = [{module.path: source_page(module.path)} for module in index.modules.values()]
    return {"Source code": ["source/index.md", *pages]}


def add_source_pages(files: Files, config: MkDocsConfig, index: CodeIndex) -> None:
    """Add every module's page, and the page listing them, to the site's files."""
    listing = ["# Source code", "",
               "Every module of the `raft` package, with line numbers. The maps and the tutorials link "
               "straight to the lines they talk about.", ""]
    for module in index.modules.values():
        page = source_page(module.path)
        files.append(File.generated(config, page, content=source_markdown(module, index)))
        listing.append(f"- [`{module.path}`]({page.removeprefix('source/')}): {module.summary}")
    files.append(File.generated(config, "source/index.md", content="\n".join(listing) + "\n"))


def source_markdown(module: Definition, index: CodeIndex) -> str:
    """A module's page: its summary and tags, links to the maps, and its code with line numbers."""
    source = index.sources[module.path]
    fence = fence_for(source, shortest=4)
    tags = []
    for tag in ("Mirrors", "Paper", "Differs"):
        if module.tag(tag):
            tags.append(f"**{tag}:** {code_words(' '.join(module.tag(tag)))}")
    back = "../" * (module.path.count("/") + 1)
    # Left out of the search index: searching thousands of lines of code buries
    # the pages that explain it (and indexing them would double the build time).
    front = "---\nsearch:\n  exclude: true\n---\n\n"
    return (f"{front}# {module.path}\n\n{code_words(module.summary)}\n\n" + "  \n".join(tags) +
            f"\n\n[Go ↔ Python map]({back}maps/go-python.md) · [Paper map]({back}maps/paper.md)\n\n"
            f'{fence}python linenums="1" title="{module.path}"\n{source}\n{fence}\n')
