"""Every exercise on a tutorial page tells the student how to know they got it right.

The rule (CONTRIBUTING.md, "Adding a tutorial", step 4): each numbered item
of an "Exercise" or "Exercises" section of ``docs/tutorials/*.md`` holds at
least one of

- an answer in a collapsed block, ``??? note "Answer"``, indented by four
  spaces under the item so that it stays inside the list item;
- a fenced code block (the expected output, or an assertion to run);
- a sentence that states the expected result, starting with one of the
  phrases in ``EXPECTATION``.

No build is needed: the Markdown sources are read directly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]-*.md"))
SECTION = re.compile(r"^## Exercises?\s*$(?P<body>.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
ITEM = re.compile(r"^\d+\. ", re.MULTILINE)
ANSWER = re.compile(r'^    \?\?\?\+? note "Answer"\n(?:[ \t]*\n)*        \S', re.MULTILINE)
FENCE = re.compile(r"^ *(```|~~~)", re.MULTILINE)
EXPECTATION = re.compile(r"check:|check your answer|you should see|expected|you got it right if", re.IGNORECASE)


def exercises(markdown: str) -> list[str]:
    """The numbered items of the page's exercise sections, each with its indented continuation."""
    items: list[str] = []
    for section in SECTION.finditer(markdown):
        body = section["body"]
        starts = [m.start() for m in ITEM.finditer(body)]
        items += [body[a:b].rstrip() for a, b in zip(starts, [*starts[1:], len(body)], strict=True)]
    return items


def lacks_a_check(item: str) -> bool:
    """True if the item has no answer block, no code block and no sentence saying what to expect."""
    return not (ANSWER.search(item) or FENCE.search(item) or EXPECTATION.search(item))


def test_every_tutorial_page_has_exercises() -> None:
    """Tutorials 1 to 11 each end with numbered exercises."""
    assert len(PAGES) == 11
    for page in PAGES:
        assert exercises(page.read_text(encoding="utf-8")), f"{page.name} has no numbered exercise"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_exercise_says_how_to_check_it(page: Path) -> None:
    """Each exercise has an answer block, a code block, or a statement of the expected result."""
    unchecked = [item.splitlines()[0] for item in exercises(page.read_text(encoding="utf-8")) if lacks_a_check(item)]
    assert unchecked == [], f"{page.name}: exercises without a way to check the answer: {unchecked}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_answer_blocks_sit_inside_their_exercise(page: Path) -> None:
    """An answer block is indented four spaces, with its text eight: otherwise Markdown ends the list there."""
    markdown = page.read_text(encoding="utf-8")
    for section in SECTION.finditer(markdown):
        for line in section["body"].splitlines():
            if '"Answer"' in line and line.lstrip().startswith("???"):
                assert line.startswith("    ???") and not line.startswith("     "), \
                    f"{page.name}: an answer block must be indented by exactly four spaces: {line!r}"
    assert len(ANSWER.findall(markdown)) == markdown.count('"Answer"')


def test_the_rule_tells_a_bare_question_from_a_checked_one() -> None:
    """The parser finds each item, and flags only the one that gives the student nothing to check against."""
    page = ("# T\n\n## Exercise\n\n"
            "1. Change the seed. Who wins?\n\n"
            "2. Count the events. You should see 3.\n\n"
            "3. Crash it.\n\n    ??? note \"Answer\"\n        It stays a candidate in term 2.\n\n"
            "4. Print it:\n\n   ```text\n   7\n   ```\n\n"
            "## See also\n\n1. Not an exercise.\n")
    items = exercises(page)
    assert [item[:2] for item in items] == ["1.", "2.", "3.", "4."]
    assert [lacks_a_check(item) for item in items] == [True, False, False, False]
