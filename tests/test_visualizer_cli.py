"""``raft-visualizer`` on the command line, and the build hook that installs its browser libraries."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from visualizer import cli

ROOT = Path(__file__).resolve().parent.parent


def test_a_taken_port_is_reported_with_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    """If the port is in use, the command says so and exits with 2 instead of a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert cli.main(["--no-browser", "--port", str(port)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"cannot serve on 127.0.0.1:{port}" in err and "--port" in err


@pytest.mark.parametrize("args", [["--port", "0"], ["--port", "70000"], ["--port", "http"], ["--nodes", "2"],
                                  ["--nodes", "10"], ["--speed", "0"], ["--seed", "-1"]])
def test_invalid_options_exit_with_status_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Out-of-range or malformed options are refused by the parser with a message."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--no-browser", *args])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert "raft-visualizer: error" in capsys.readouterr().err


def test_a_host_that_is_not_loopback_gets_a_loud_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """Serving beyond this computer is allowed but announced (192.0.2.1 is a documentation address: bind fails)."""
    assert cli.main(["--no-browser", "--host", "192.0.2.1", "--port", "8765"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "WARNING" in err and "not on loopback" in err
    assert cli._is_loopback("127.0.0.1") and cli._is_loopback("::1") and cli._is_loopback("localhost")
    assert not cli._is_loopback("0.0.0.0")


def test_without_a_display_no_browser_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """On Linux without DISPLAY, webbrowser could start a text browser in our terminal: we do not ask it to."""
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not cli._can_show_a_browser()
    monkeypatch.setenv("DISPLAY", ":0")
    assert cli._can_show_a_browser()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_python_dash_m_visualizer_serves_the_page_and_stops_cleanly() -> None:
    """Started as a user would, it prints the URL, serves the page and a live cluster, and stops cleanly."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "visualizer", "--no-browser", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                    assert b'"ok":true' in reply.read()
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
            assert b"Raft" in reply.read()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, "kill stops it cleanly, like Ctrl+C"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def load_build_hook() -> Any:
    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_build_fails_clearly_without_npm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A build on a machine without npm stops with a message saying to install Node.js and npm."""
    hatch_build = load_build_hook()
    monkeypatch.setattr(hatch_build.shutil, "which", lambda name: None)
    hook = hatch_build.VendorBuildHook.__new__(hatch_build.VendorBuildHook)
    monkeypatch.setattr(type(hook), "root", property(lambda self: str(tmp_path)))
    with pytest.raises(RuntimeError, match=r"Install Node\.js and npm"):
        hook.initialize("standard", {"force_include": {}})


def test_the_lock_file_pins_socket_io_client_4_and_nothing_is_committed_from_node_modules() -> None:
    """socket.io-client 4.x speaks Socket.IO protocol 5, as Flask-SocketIO 5 does; vendor files stay out of git."""
    import json

    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    version = lock["packages"]["node_modules/socket.io-client"]["version"]
    assert version.startswith("4."), version
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "node_modules/" in ignored and "visualizer/static/vendor/" in ignored
    assert os.path.isfile(ROOT / "hatch_build.py")
