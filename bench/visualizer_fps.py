"""The visualizer under load, in a real browser: frames per second, events delivered, writes answered.

The real page in Debian's Chromium (headless, driven by Playwright) watches
a simulated cluster while the page itself asks for client writes at a fixed
rate, the way a lecturer holding W would. Over a measuring window it
reports:

* ``fps``: animation frames the page managed per second (60 is the ceiling);
* ``long_task_share``: the fraction of the window the page's main thread
  spent in tasks longer than 50 ms (the browser's "long tasks");
* ``events_per_s``: protocol events that reached the page (counted on the
  WebSocket, from the server's ``batch`` messages);
* ``writes_per_s``: client writes that were answered "ok" (counted the same
  way), against ``writes_asked_per_s``.

    python -m bench.visualizer_fps [--nodes 9] [--speed 2] [--writes 20] [--seconds 20] [--json out.json]

Needs /usr/bin/chromium and the playwright package (the dev extra).
Figures depend on the machine; compare two versions of the page on the same
machine, one right after the other (``--label`` names each run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Counts frames and long tasks from inside the page.
PROBE = """() => {
  window.__bench = {frames: 0, longMs: 0, longCount: 0, start: performance.now()};
  const tick = () => { window.__bench.frames++; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { window.__bench.longMs += e.duration; window.__bench.longCount++; }
  }).observe({entryTypes: ["longtask"]});
}"""

# Presses Write every 1/rate seconds, with a new key each time.
WRITER = """(rate) => {
  let n = 0;
  window.__writer = setInterval(() => {
    document.querySelector("#kv-key").value = "k" + (n++ % 50);
    document.querySelector("#write-btn").click();
  }, 1000 / rate);
}"""


class SocketCounter:
    """Counts what the server pushes over the page's WebSocket (Socket.IO ``batch`` messages)."""

    def __init__(self) -> None:
        self.counting = False
        self.events = 0
        self.answered: set[int] = set()

    def on_frame(self, payload: str | bytes) -> None:
        if not self.counting or not isinstance(payload, str) or not payload.startswith("42"):
            return
        try:
            name, data = json.loads(payload[2:])[:2]
        except (ValueError, TypeError):
            return
        if name != "batch" or not isinstance(data, dict):
            return
        self.events += len(data.get("events") or ())
        for client in data.get("clients") or ():
            if client.get("ok") is True and client.get("command", "").startswith("set "):
                self.answered.add(client["seq"])


def measure(nodes: int, speed: float, writes: float, seconds: float, warmup: float = 5.0) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from visualizer.server import BackgroundServer, Visualizer, bind, missing_vendor_files

    if missing_vendor_files():
        raise SystemExit("install the package first (pip install -e .): its build fetches socket.io-client")
    server = BackgroundServer(Visualizer(nodes=nodes, seed=1, speed=speed), bind("127.0.0.1", 0)).start()
    counter = SocketCounter()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("websocket", lambda ws: ws.on("framereceived", counter.on_frame))
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.wait_for_selector("body[data-ready='1']", timeout=30_000)
            page.wait_for_selector("g.node.leader", timeout=60_000)
            page.evaluate(WRITER, writes)
            # Real time: the page and the server are real programs here. Waiting
            # through Playwright (not time.sleep) lets it deliver the frames as they come.
            page.wait_for_timeout(warmup * 1000)
            page.evaluate(PROBE)
            counter.counting = True
            started = time.perf_counter()
            page.wait_for_timeout(seconds * 1000)
            counter.counting = False
            elapsed = time.perf_counter() - started
            probe: dict[str, float] = page.evaluate("() => window.__bench")
            browser.close()
    finally:
        server.stop()
    return {
        "nodes": nodes, "speed": speed, "writes_asked_per_s": writes, "seconds": round(elapsed, 2),
        "fps": round(probe["frames"] / elapsed, 1),
        "long_task_share": round(probe["longMs"] / 1000 / elapsed, 3),
        "long_tasks": int(probe["longCount"]),
        "events_per_s": round(counter.events / elapsed, 1),
        "writes_per_s": round(len(counter.answered) / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.visualizer_fps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=9)
    parser.add_argument("--speed", type=float, default=2.0, help="virtual seconds per real second (default 2)")
    parser.add_argument("--writes", type=float, default=20.0, help="client writes the page asks for per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the measuring window")
    parser.add_argument("--label", default="", help="a name for this run in the output (e.g. the commit)")
    parser.add_argument("--json", type=Path, help="append the result as one JSON line to this file")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print("error: Debian's chromium is needed at /usr/bin/chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    if args.nodes < 1 or args.speed <= 0 or args.writes <= 0 or args.seconds <= 0:
        parser.error("--nodes, --speed, --writes and --seconds must be positive")
    result = {"label": args.label, **measure(args.nodes, args.speed, args.writes, args.seconds)}
    print(json.dumps(result))
    if args.json:
        with args.json.open("a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
