"""``raft-visualizer``: start a simulated cluster and watch it in the browser.

    raft-visualizer [--port 8765] [--host 127.0.0.1] [--nodes 5] [--seed 1]
                    [--speed 0.25] [--no-browser]

It binds the port first, so a port that is taken or invalid is reported at
once (exit status 2), then prints the URL and opens it in the default
browser. Opening a browser is best effort: without one, open the URL by hand.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import threading
import webbrowser
from collections.abc import Callable, Sequence

from visualizer.commands import MAX_NODES, MAX_SEED, MAX_SPEED, MIN_NODES, MIN_SPEED
from visualizer.server import BackgroundServer, Visualizer, bind, missing_vendor_files
from visualizer.simulation import DEFAULT_SPEED

EXIT_USAGE = 2
DEFAULT_PORT = 8765


def _ranged(kind: type[int] | type[float], low: float, high: float, what: str) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: use {low:g} to {high:g}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raft-visualizer",
        description="Watch and steer a simulated Raft cluster in your browser. The run is deterministic: "
                    "the seed and the interventions you make replay it exactly.",
    )
    parser.add_argument("--port", type=_ranged(int, 1, 65535, "a port number"), default=DEFAULT_PORT,
                        help=f"TCP port to serve on (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: only this computer can connect)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser, just print the URL")
    parser.add_argument("--nodes", type=_ranged(int, MIN_NODES, MAX_NODES, "a whole number"), default=5,
                        help=f"servers in the cluster, {MIN_NODES}–{MAX_NODES} (default 5)")
    parser.add_argument("--seed", type=_ranged(int, 0, MAX_SEED, "a whole number"), default=1,
                        help="random seed: the same seed and interventions give the same run (default 1)")
    parser.add_argument("--speed", type=_ranged(float, MIN_SPEED, MAX_SPEED, "a number"), default=DEFAULT_SPEED,
                        help=f"virtual seconds per wall-clock second; 1 is real time (default {DEFAULT_SPEED})")
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _can_show_a_browser() -> bool:
    """A graphical browser is likely here; elsewhere ``webbrowser`` may start a text browser in our terminal."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open_browser(url: str) -> None:
    def attempt() -> None:
        try:
            if not webbrowser.open(url, new=2):
                print(f"raft-visualizer: could not open a browser; open {url} yourself", file=sys.stderr)
        except Exception as err:  # a broken browser setup must never stop the server
            print(f"raft-visualizer: could not open a browser ({err}); open {url} yourself", file=sys.stderr)

    threading.Thread(target=attempt, name="open-browser", daemon=True).start()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not _is_loopback(args.host):
        print("=" * 72 + f"\nWARNING: serving on {args.host}, not on loopback. Anyone who can reach this "
              "address can\ncontrol the simulation. There is no password. Use --host 127.0.0.1 unless you "
              "mean it.\n" + "=" * 72, file=sys.stderr)
    try:
        sock = bind(args.host, args.port)
    except OSError as err:
        reason = err.strerror or str(err)
        print(f"raft-visualizer: cannot serve on {args.host}:{args.port}: {reason}. "
              f"Choose another port with --port, or another address with --host.", file=sys.stderr)
        return EXIT_USAGE
    missing = missing_vendor_files()
    if missing:
        print(f"raft-visualizer: front-end files are missing ({', '.join(missing)}); the page cannot connect. "
              "Install the package with `python3 -m pip install .` (its build runs npm).", file=sys.stderr)
    visualizer = Visualizer(nodes=args.nodes, seed=args.seed, speed=args.speed)
    server = BackgroundServer(visualizer, sock)
    url = _url(args.host, server.port)
    print(f"raft-visualizer: {args.nodes} nodes, seed {args.seed}, speed {args.speed:g}× — open {url}", flush=True)
    print("Press Ctrl+C to stop.", flush=True)
    if not args.no_browser:
        if _can_show_a_browser():
            _open_browser(url)
        else:
            print("raft-visualizer: no graphical display found, so no browser was opened.", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl+C
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        print("\nraft-visualizer: stopped.")
    finally:
        server.server.server_close()
        sock.close()
        visualizer.close()
    return 0
