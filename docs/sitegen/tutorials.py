"""The tutorials' real output: each ``tutorials/NN_*.py`` runs at build time and its pages show what it printed.

A tutorial runs once per build, all of them in parallel. Its output is kept in
a cache folder, under a hash of the tutorial, of the tutorial helpers and of
the whole ``raft/`` package, so an unchanged tutorial is not run twice. The
output is cut at the step headers that ``tutorial_helpers.step`` prints and
written to ``tutorial-output/<tutorial>/<step>.txt`` in the cache folder,
which ``pymdownx.snippets`` reads. A tutorial that fails or writes to stderr
fails the build, and so does a page that shows a step without its output.

``RAFT_DOCS_CACHE`` chooses the cache's parent folder (the system's temporary
folder by default); ``RAFT_DOCS_CACHE=off`` runs every tutorial again.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.pages import Page

from .common import PACKAGE, ROOT, TUTORIALS, log

TUTORIAL_TIMEOUT = 600  # seconds one tutorial may run
STEP_HEADER = re.compile(r"^=== \[(?P<name>[\w-]+)\] (?P<title>.*) ===$")
SNIPPET = re.compile(r'^\s*--8<--\s+"(?P<path>[^":]+)(?::(?P<section>[\w-]+))?"\s*$', re.MULTILINE)


def tutorial_scripts() -> list[Path]:
    return sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))


def _fingerprint(script: Path) -> str:
    digest = hashlib.sha256(sys.version.encode())
    for path in [script, *sorted(TUTORIALS.glob("*helpers*.py")), *sorted(PACKAGE.rglob("*.py"))]:
        digest.update(path.as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def cache_dir() -> Path:
    """Where run outputs are kept: ``$RAFT_DOCS_CACHE`` if it names a folder, else the system's temp folder."""
    setting = os.environ.get("RAFT_DOCS_CACHE", "")
    base = setting if setting not in ("", "off") else tempfile.gettempdir()
    tag = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
    return Path(base) / f"raft-textbook-docs-{tag}"


def run_tutorial(script: Path, cache: Path) -> tuple[str, str | None]:
    """Run one tutorial (or reuse its cached output); returns (output, error message or None)."""
    cached = cache / "runs" / f"{script.stem}-{_fingerprint(script)}.txt"
    if cached.is_file() and os.environ.get("RAFT_DOCS_CACHE") != "off":
        log.debug("tutorial %s: output cached", script.name)
        return cached.read_text(encoding="utf-8"), None
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PYTHONIOENCODING": "utf-8"}
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                              encoding="utf-8", timeout=TUTORIAL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return "", f"{script.name} did not finish within {TUTORIAL_TIMEOUT} s"
    if done.returncode != 0 or done.stderr.strip():
        return done.stdout, (f"{script.name} exited with status {done.returncode} and wrote to stderr:\n"
                             f"{done.stderr[-3000:]}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(done.stdout, encoding="utf-8")
    log.info("tutorial %s ran in %.1f s", script.name, time.perf_counter() - started)
    return done.stdout, None


def split_steps(output: str) -> dict[str, str]:
    """Cut a tutorial's output at its step headers: step name -> what that step printed."""
    steps: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        match = STEP_HEADER.match(line)
        if match:
            current = steps.setdefault(match["name"], [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip("\n") + "\n" for name, lines in steps.items()}


def produce_tutorial_output(cache: Path) -> dict[str, dict[str, str]]:
    """Run every tutorial (in parallel) and write each step's output where snippets can include it."""
    scripts = tutorial_scripts()
    with ThreadPoolExecutor(max_workers=max(1, min(len(scripts), os.cpu_count() or 1))) as pool:
        results = list(pool.map(lambda s: run_tutorial(s, cache), scripts))
    outputs: dict[str, dict[str, str]] = {}
    for script, (output, error) in zip(scripts, results, strict=True):
        if error:
            log.warning("tutorial %s", error)
        steps = split_steps(output)
        outputs[script.stem] = steps
        folder = cache / "tutorial-output" / script.stem
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.txt"):
            stale.unlink()
        for name, text in steps.items():
            (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return outputs


def configure_snippets(config: MkDocsConfig, cache: Path) -> None:
    """Let ``pymdownx.snippets`` include the tutorials (from the project) and their output (from the cache)."""
    snippets = config.mdx_configs.setdefault("pymdownx.snippets", {})
    snippets["base_path"] = [str(ROOT), str(cache)]
    snippets["check_paths"] = True


def check_tutorial_includes(markdown: str, page: Page, outputs: dict[str, dict[str, str]]) -> None:
    """Every snippet named in a page must exist, and every tutorial step shown must show its output too."""
    for match in SNIPPET.finditer(markdown):
        path, section = match["path"], match["section"]
        if path.startswith("tutorials/") and section:
            source = (ROOT / path).read_text(encoding="utf-8")
            if f"# --8<-- [start:{section}]" not in source:
                log.warning("%s includes %s:%s, but that file has no such section", page.file.src_uri, path, section)
            stem = Path(path).stem
            text = outputs.get(stem, {}).get(section, "")
            wanted = f"tutorial-output/{stem}/{section}.txt"
            if text.strip() and wanted not in markdown:
                log.warning("%s shows step %s of %s but not its output (%s)", page.file.src_uri, section, path,
                            wanted)
        elif path.startswith("tutorial-output/"):
            stem, name = Path(path).parent.name, Path(path).stem
            if name not in outputs.get(stem, {}):
                log.warning("%s includes output %s, but the tutorial printed no step %r", page.file.src_uri,
                            path, name)
