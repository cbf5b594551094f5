"""MkDocs hooks: where a build of the site calls the builder in docs/sitegen/.

mkdocs.yml names this file under ``hooks:``. Each function below is one step
of the build; the work is done by the modules of ``sitegen`` (its docstring
lists them):

* ``on_config``: load the code index, run the tutorials, point
  ``pymdownx.snippets`` at their output, add the "Source code" section;
* ``on_files``: add one generated page per module of ``raft/``;
* ``on_page_markdown``: expand the ``<!-- @... -->`` markers and the
  ``code:`` links, and check the tutorial includes;
* ``on_page_content``: register the line anchors, so links to them are checked.

MkDocs puts docs/ on ``sys.path`` while it loads this file, which is how
``sitegen`` is found.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files, InclusionLevel
from mkdocs.structure.pages import Page
from sitegen import code_index, links, markers, source_pages, tutorials
from sitegen.common import ROOT


@dataclass
class _State:
    """What one build has learned: the code index and the tutorials' output."""

    index: code_index.CodeIndex | None = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)


STATE = _State()


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    STATE.index = code_index.scan_code()
    cache = tutorials.cache_dir()
    STATE.outputs = tutorials.produce_tutorial_output(cache)
    tutorials.configure_snippets(config, cache)
    _absolute_griffe_extensions(config)
    config.nav = [*(config.nav or []), source_pages.nav_section(STATE.index)]
    return config


def _absolute_griffe_extensions(config: MkDocsConfig) -> None:
    """Griffe finds an extension file relative to the working directory; make mkdocs.yml's paths absolute,
    so the site also builds from another directory (``mkdocs build -f path/to/mkdocs.yml``)."""
    plugin = config.plugins.get("mkdocstrings")
    if plugin is None:
        return
    options = plugin.config.get("handlers", {}).get("python", {}).get("options", {})
    extensions = options.get("extensions", [])
    for k, extension in enumerate(extensions):
        if isinstance(extension, str) and extension.endswith(".py") and not os.path.isabs(extension):
            extensions[k] = str(ROOT / extension)


# The builder's code and data sit in docs/ but are not part of the site.
BUILDER = ("sitegen/", "data/")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    assert STATE.index is not None
    for file in files:
        if file.src_uri.startswith(BUILDER):
            file.inclusion = InclusionLevel.EXCLUDED  # as if listed under exclude_docs
    source_pages.add_source_pages(files, config, STATE.index)
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    assert STATE.index is not None
    src = page.file.src_uri
    markdown = markers.expand_markers(markdown, src, STATE.index, Path(config.docs_dir))
    markdown = links.resolve_code_links(markdown, src, STATE.index)
    tutorials.check_tutorial_includes(markdown, page, STATE.outputs)
    return markdown


ANCHOR_ID = re.compile(r'\bid="([^"]+)"')


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Tell MkDocs about every id in the page, so that links to them can be checked.

    MkDocs finds the ids of headings and of raw HTML, but not those inside
    highlighted code, such as the line anchors (``__codelineno-0-216``) that
    the maps and tutorials link to. With ``validation: anchors: warn``, a
    link to a line or a heading that does not exist then fails the build.
    """
    if page.present_anchor_ids is not None:
        page.present_anchor_ids.update(ANCHOR_ID.findall(html))
    return html
