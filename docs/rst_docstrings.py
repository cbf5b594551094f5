"""Two reStructuredText habits of the docstrings, turned into Markdown for the site.

The docstrings in ``raft/`` are written to be read in a terminal and in an
editor, and they use two conventions from reStructuredText that Markdown does
not know:

* a paragraph that ends in ``::`` introduces an indented *literal block* (a
  command line, a file layout, a byte format);
* a *simple table* is framed by lines of ``=====  =====``, one run of ``=`` per
  column; a row whose first column is blank continues the row above.

``rst_to_markdown`` rewrites both: the block becomes a fenced ``text`` block
(and ``::`` a single colon), the table a Markdown table. ``RstDocstrings`` is a
Griffe extension that applies it to every docstring mkdocstrings renders (it
is listed in mkdocs.yml), and ``docs/hooks.py`` uses ``literal_blocks`` and
``simple_tables`` to put one block or one table of a module's docstring on a
page. Either way the docstring stays the one source (CONTRIBUTING.md, rule 8).
"""

from __future__ import annotations

import itertools
import re
import textwrap
from dataclasses import dataclass
from typing import Any

from griffe import Extension

BORDER = re.compile(r"^(?P<indent> *)=+(?: +=+)+ *$")


@dataclass
class SimpleTable:
    """One simple table: where it is in the text, and its cells."""

    start: int  # index of its first border line
    end: int  # index of the line after its last border line
    header: list[str] | None
    rows: list[list[str]]


def _columns(border: str) -> list[int]:
    """The start of each column: where each run of ``=`` begins."""
    return [match.start() for match in re.finditer(r"=+", border)]


def _cells(line: str, starts: list[int]) -> list[str]:
    """Cut a row at the column starts; a word that runs over a column's edge stays in its column."""
    cuts: list[int] = []
    for start in starts[1:]:
        cut = start
        while cut < len(line) and line[cut - 1] != " " and line[cut] != " ":
            cut += 1  # the text crosses the column's edge: keep the word whole
        cuts.append(max(cut, cuts[-1] if cuts else 0))
    bounds = [0, *cuts, max(len(line), cuts[-1] if cuts else 0)]
    return [line[a:b].strip() for a, b in itertools.pairwise(bounds)]


def simple_tables(text: str) -> list[SimpleTable]:
    """Every simple table in ``text``, in order.

    Two border lines frame a table without a header; three put a header
    between the first two. A table ends at a border followed by a blank line,
    or by the end of the text.
    """
    lines = text.splitlines()
    tables = []
    i = 0
    while i < len(lines):
        if not BORDER.match(lines[i]):
            i += 1
            continue
        starts = _columns(lines[i])
        borders = [i]
        closed = False
        j = i + 1
        while j < len(lines) and len(borders) < 3:
            if BORDER.match(lines[j]):
                borders.append(j)
                if j + 1 >= len(lines) or not lines[j + 1].strip():
                    closed = True
                    break
            j += 1
        if len(borders) == 3:
            closed = True
        if not closed or len(borders) < 2:
            i += 1
            continue
        header = None
        body_from = i + 1
        if len(borders) == 3:
            header_rows = _rows(lines[i + 1:borders[1]], starts)
            header = header_rows[0] if header_rows else None
            body_from = borders[1] + 1
        tables.append(SimpleTable(i, borders[-1] + 1, header, _rows(lines[body_from:borders[-1]], starts)))
        i = borders[-1] + 1
    return tables


def _rows(lines: list[str], starts: list[int]) -> list[list[str]]:
    rows: list[list[str]] = []
    for line in lines:
        if not line.strip():
            continue
        cells = _cells(line, starts)
        if rows and not cells[0]:
            # A continuation line: its text belongs to the row above.
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    for row in rows:
        # "``crash``, ``restart``, ``partition``" is one list that overflows its column: a first
        # cell that ends in a comma goes on with the words of the next cell, up to the list's end.
        while len(row) > 1 and row[0].endswith(",") and row[1]:
            word, _, rest = row[1].partition(" ")
            row[0], row[1] = f"{row[0]} {word}", rest.strip()
    return rows


def markdown_table(header: list[str] | None, rows: list[list[str]]) -> str:
    """A Markdown table; a table without a header gets an empty one (Markdown requires a header row)."""
    width = len(rows[0]) if rows else len(header or [])
    head = header or [" "] * width

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(escape_pipes(cell) for cell in cells) + " |"

    return "\n".join([line(head), "|" + "---|" * width, *(line(row) for row in rows)])


CODE_SPAN = re.compile(r"(`+).+?\1")


def escape_pipes(cell: str) -> str:
    """Escape ``|`` for a Markdown table cell, except inside code spans, where Markdown keeps it as it is."""
    out, last = [], 0
    for match in CODE_SPAN.finditer(cell):
        out.append(cell[last:match.start()].replace("|", "\\|"))
        out.append(match[0])
        last = match.end()
    out.append(cell[last:].replace("|", "\\|"))
    return "".join(out)


LITERAL_INTRO = re.compile(r"^(?P<indent> *)(?P<text>.*?)\s*::\s*$")


def literal_blocks(text: str) -> list[str]:
    """The literal blocks of ``text`` (what follows a paragraph ending in ``::``), dedented."""
    return [block for _, _, _, block in _find_literal_blocks(text.splitlines())]


def _find_literal_blocks(lines: list[str]) -> list[tuple[int, int, int, str]]:
    """(intro line, first line after the block, indent of the intro, dedented block) for each block."""
    found = []
    i = 0
    while i < len(lines):
        match = LITERAL_INTRO.match(lines[i])
        if not match or BORDER.match(lines[i]):
            i += 1
            continue
        indent = len(match["indent"])
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j == i + 1 or j >= len(lines) or len(lines[j]) - len(lines[j].lstrip()) <= indent:
            i += 1  # "::" without a blank line and an indented block after it: not a literal block
            continue
        end = j
        while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
            end += 1
        while not lines[end - 1].strip():
            end -= 1
        block = textwrap.dedent("\n".join(lines[j:end]))
        found.append((i, end, indent, block))
        i = end
    return found


def rst_to_markdown(text: str) -> str:
    """Rewrite the literal blocks and simple tables of a docstring as Markdown."""
    lines = text.splitlines()
    for intro, end, indent, block in reversed(_find_literal_blocks(lines)):
        match = LITERAL_INTRO.match(lines[intro])
        assert match is not None
        pad = " " * indent
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", block)), default=0))
        intro_text = [f"{pad}{match['text']}:"] if match["text"] else []
        lines[intro:end] = [*intro_text, "", f"{pad}{fence}text",
                            *(f"{pad}{line}" if line else "" for line in block.splitlines()), f"{pad}{fence}"]
    text = "\n".join(lines)
    for table in reversed(simple_tables(text)):
        lines = text.splitlines()
        lines[table.start:table.end] = markdown_table(table.header, table.rows).splitlines()
        text = "\n".join(lines)
    return text


class RstDocstrings(Extension):
    """A Griffe extension: every docstring mkdocstrings loads is passed through ``rst_to_markdown``."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
