"""The package layout is the architecture: the hashicorp mirror at the top, the tools in rooms of their own.

These tests read the import statements of every module under ``raft/``
(including imports inside functions and under ``TYPE_CHECKING``) and fail if
a lower layer reaches up into a higher one, or if a module that is not a
hashicorp file appears at the top of the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "raft"

# hashicorp/raft v1.7.3's non-test Go files, without the two we leave out
# (progress.go and saturation.go: metrics; testing_batch.go: a build tag).
GO_FILES = {
    "api", "commands", "commitment", "config", "configuration", "discard_snapshot", "file_snapshot", "fsm",
    "future", "inmem_snapshot", "inmem_store", "inmem_transport", "log", "log_cache", "net_transport",
    "observer", "peersjson", "raft", "replication", "snapshot", "stable", "state", "tcp_transport", "testing",
    "transport", "util",
}
# What every module needs, or a split of one Go file that teaches something.
SHARED = {"__init__", "errors", "events", "net_frames"}

# Layers, lowest first. A module may import its own layer and the ones below;
# two different packages of the same rank may not import each other.
RANK = {"runtime": 0, "mirror": 1, "stores": 2, "checkers": 2, "kv": 3, "sim": 4, "lab": 5}


def layer_of(module: str) -> str:
    """``raft.sim.fuzz`` -> ``sim``; ``raft.raft`` -> ``mirror``."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in RANK:
        return parts[1]
    return "mirror"


def imports_of(path: Path) -> set[str]:
    """Every ``raft.*`` module named by an import anywhere in ``path``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("raft"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("raft"))
    return found


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_the_top_of_the_package_is_the_hashicorp_file_list() -> None:
    top = {path.stem for path in PACKAGE.glob("*.py")}
    strangers = sorted(top - GO_FILES - SHARED)
    assert not strangers, f"modules at the top of raft/ that are not hashicorp files: {strangers}"
    subpackages = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert subpackages == sorted(RANK.keys() - {"mirror"})


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        mine = layer_of(here)
        for target in sorted(imports_of(path)):
            theirs = layer_of(target)
            if theirs == mine:
                continue
            if RANK[theirs] >= RANK[mine]:
                wrong.append(f"{here} ({mine}) imports {target} ({theirs})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_the_protocol_knows_nothing_of_the_teaching_tools() -> None:
    """No mirror module imports the simulator, the checkers or the key-value service."""
    for path in sorted(PACKAGE.glob("*.py")):
        for target in imports_of(path):
            assert layer_of(target) in ("mirror", "runtime"), f"{path.name} imports {target}"


def test_no_mirror_module_mentions_the_teaching_bugs() -> None:
    """The teaching bugs are injected from raft/sim/bugs.py; the protocol has no switch for them.

    A guarded ``if bugs.x:`` line inside raft.py would put a wrong branch next
    to each safety rule a student reads; the mirror must contain only the
    correct code. (The key-value service is checked too: its read path once
    skipped the leader's first commit under a switch.)
    """
    words = ("teaching bug", "teachingbugs", "bugs.", "count_old_terms", "vote_without_log_check",
             "skip_leader_noop", "commit_old_terms_by_counting", "forget_vote_on_restart", "forget_term_on_restart")
    paths = [*PACKAGE.glob("*.py"), *(PACKAGE / "runtime").glob("*.py"), *(PACKAGE / "kv").glob("*.py")]
    found = [f"{path.relative_to(ROOT)}: {word}" for path in sorted(paths)
             for word in words if word in path.read_text(encoding="utf-8").lower()]
    assert not found, "the mirror mentions the teaching bugs:\n" + "\n".join(found)
