"""The page "Why Raft is safe" names only checker rules that the invariant checker really reports.

Paper: Figure 3 (the properties), §5.4.3 (why they hold).

The page ties each step of the paper's argument to a rule of
``raft/checkers/invariants.py``. A rule is a string the checker passes to
``_fail``; renaming or removing one there without updating the page fails
this test. No build is needed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "safety.md"
CHECKER = ROOT / "raft" / "checkers" / "invariants.py"
FIGURE_3 = ["Election Safety", "Leader Append-Only", "Log Matching", "Leader Completeness", "State Machine Safety"]


def checker_rules() -> set[str]:
    """Every rule name the invariant checker can report: the first argument of each ``self._fail(...)`` call."""
    tree = ast.parse(CHECKER.read_text(encoding="utf-8"))
    rules = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_fail"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            rules.add(node.args[0].value)
    return rules


def page_rules() -> set[str]:
    """The rules the page names: the "Checker rule" column of its table, and every "checker rule `X`"."""
    text = PAGE.read_text(encoding="utf-8")
    named = set(re.findall(r"checker\s+rule\s+`([^`]+)`", text))
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("|") and "Checker rule" in line)
    column = [cell.strip() for cell in lines[header].strip("|").split("|")].index("Checker rule")
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        cell = [cell.strip() for cell in line.strip("|").split("|")][column]
        named.update(re.findall(r"`([^`]+)`", cell))
    return named


def test_the_checker_reports_rules_under_the_names_this_test_reads() -> None:
    """The parser finds the checker's rules: at least the five properties of Figure 3."""
    assert set(FIGURE_3) <= checker_rules()


def test_every_checker_rule_named_on_the_page_exists_in_the_checker() -> None:
    """No rule on the page is missing from raft/checkers/invariants.py."""
    named = page_rules()
    assert named, "the page names no checker rule"
    assert sorted(named - checker_rules()) == []


def test_the_page_ties_every_figure_3_property_to_its_checker_rule() -> None:
    """Each property of Figure 3 appears on the page as a checker rule."""
    assert sorted(set(FIGURE_3) - page_rules()) == []


def test_the_page_cites_the_argument_by_section_and_figure() -> None:
    """The paper's sections and figures for the argument are cited: §5.2, §5.3, §5.4.1-3, Figures 2, 3, 8 and 9."""
    text = PAGE.read_text(encoding="utf-8")
    for citation in ["§5.2", "§5.3", "§5.4.1", "§5.4.2", "§5.4.3", "Figure 2", "Figure 3", "Figure 8", "Figure 9"]:
        assert citation in text, citation


def test_the_page_links_only_to_public_names() -> None:
    """Code links name no underscore helper, which may be folded into the Go-named functions at any time."""
    targets = re.findall(r"\]\(code:([^)\s#]+)\)", PAGE.read_text(encoding="utf-8"))
    assert targets
    assert [t for t in targets if any(part.startswith("_") for part in re.split(r"[./]", t))] == []


def test_the_page_is_in_the_nav_and_linked_from_the_safety_tutorial() -> None:
    """Readers find the page from the site's navigation and from tutorial 4."""
    assert re.search(r"^\s+- Why Raft is safe: safety\.md$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"),
                     re.MULTILINE)
    assert "](../safety.md)" in (ROOT / "docs" / "tutorials" / "04-safety.md").read_text(encoding="utf-8")
