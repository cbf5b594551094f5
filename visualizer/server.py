"""The web server: one page, one Socket.IO channel, one simulation shared by every browser.

Read before: simulation.py. Read next: static/app.js (the page).

Flask serves ``templates/index.html`` and the static files; Flask-SocketIO
(``async_mode="threading"``, WebSocket through simple-websocket) carries
commands from browsers and batches of changes to them. Socket handlers run
on the web server's threads, so they never touch the cluster: they check a
payload and queue it (``Simulation.submit``). The simulation thread answers
with the server-level ``socketio.emit``, to everyone or to one browser.

Socket events, browser → server: ``command`` (see commands.py). Server →
browser: ``snapshot`` (everything, on connect and after a rewind, a reset
or an import), ``batch`` (what changed, 25 times a second at most),
``export``, ``explanation``, ``notice``, ``status`` and ``error``.

CORS stays Flask-SocketIO's default: only pages from this server's own
origin may connect.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any

from flask import Flask, render_template, request
from flask_socketio import SocketIO  # type: ignore[import-untyped]
from werkzeug.serving import BaseWSGIServer, make_server

from visualizer.commands import CommandError, parse_command
from visualizer.simulation import DEFAULT_SPEED, Simulation
from visualizer.sources import SourceIndex

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
VENDOR_FILES = ("socket.io.min.js",)


class SocketPublisher:
    """Sends the simulation's messages through Socket.IO, from any thread."""

    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio

    def broadcast(self, name: str, data: Any) -> None:
        self.socketio.emit(name, data)

    def send(self, sid: str, name: str, data: Any) -> None:
        self.socketio.emit(name, data, to=sid)


def missing_vendor_files() -> list[str]:
    """Front-end library files that the build did not install (see hatch_build.py)."""
    vendor = PACKAGE_DIR / "static" / "vendor"
    return [name for name in VENDOR_FILES if not (vendor / name).is_file()]


class Visualizer:
    """The Flask app, its Socket.IO server and the simulation they share."""

    def __init__(self, *, nodes: int = 5, seed: int = 1, speed: float = DEFAULT_SPEED, playing: bool = True,
                 start: bool = True) -> None:
        self.app = Flask(__name__, static_folder=str(PACKAGE_DIR / "static"),
                         template_folder=str(PACKAGE_DIR / "templates"))
        self.socketio = SocketIO(self.app, async_mode="threading")
        self.simulation = Simulation(SocketPublisher(self.socketio), nodes=nodes, seed=seed, speed=speed,
                                     playing=playing)
        self.sources = SourceIndex()
        threading.Thread(target=self.sources.build, name="raft-source-index", daemon=True).start()
        self._routes()
        self._socket_handlers()
        if start:
            self.simulation.start()

    def _routes(self) -> None:
        @self.app.get("/")
        def index() -> str:
            return render_template("index.html", missing=missing_vendor_files())

        @self.app.get("/healthz")
        def healthz() -> dict[str, Any]:
            return {"ok": True, "nodes": list(self.simulation.node_ids)}

    def _socket_handlers(self) -> None:
        socketio = self.socketio
        socketio.on_event("connect", self._on_connect)
        socketio.on_event("command", self._on_command)
        socketio.on_event("*", self._on_unknown)
        socketio.on_error_default(self._on_error)

    def _on_connect(self, auth: Any = None) -> None:
        self.simulation.submit({"action": "hello"}, _sid())

    def _on_command(self, data: Any = None) -> None:
        if isinstance(data, dict) and data.get("action") == "explain":
            self._explain(data)
        else:
            self.simulation.submit(data, _sid())

    def _on_unknown(self, event: Any, data: Any = None) -> None:
        self._reply("error", {"action": str(event)[:30], "message": "unknown event; send 'command'", "detail": ""})

    def _on_error(self, err: Exception) -> None:
        logger.exception("visualizer: socket handler failed")
        self._reply("error", {"action": "", "message": f"server error: {type(err).__name__}", "detail": ""})

    def _reply(self, name: str, data: Any) -> None:
        self.socketio.emit(name, data, to=_sid())

    def _explain(self, data: dict[str, Any]) -> None:
        """Answer an ``explain`` command here: it reads the code, not the cluster."""
        try:
            command = parse_command(data, self.simulation.node_ids)
        except CommandError as err:
            self._reply("error", {"action": "explain", "message": str(err), "detail": ""})
            return
        func = command.args["func"]
        info = self.sources.explain(func)
        self._reply("explanation", info or {"func": func, "missing": True})

    def close(self) -> None:
        self.simulation.stop()


def _sid() -> str:
    sid: str = request.sid  # type: ignore[attr-defined]  # Flask-SocketIO adds it to the request
    return sid


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; raises ``OSError`` if the port is taken or the host is wrong."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class BackgroundServer:
    """The web server on a socket we bound ourselves, served from a thread (for the CLI and tests)."""

    def __init__(self, visualizer: Visualizer, sock: socket.socket) -> None:
        self.visualizer = visualizer
        self.socket = sock
        host, port = sock.getsockname()[:2]
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns the useful output
        self.server: BaseWSGIServer = make_server(host, port, visualizer.app, threaded=True, fd=sock.fileno())
        self.thread = threading.Thread(target=self.server.serve_forever, name="raft-visualizer-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    def start(self) -> BackgroundServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.socket.close()
        self.visualizer.close()
