"""Hatch build hook: install the visualizer's front-end libraries from the npm lock file.

Lectures happen offline, so the page never loads a library from a CDN. The
libraries come from the npm registry instead, pinned by ``package-lock.json``:
every build (``pip install .``, ``pip install -e .``, ``python -m build``)
runs ``npm ci`` and copies the browser builds into ``visualizer/static/vendor/``.
That folder is git-ignored; for a regular wheel the files are force-included,
for an editable install the page serves them from the source tree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

VENDOR_DIR = Path("visualizer") / "static" / "vendor"
# node_modules path → file name in VENDOR_DIR
VENDOR_FILES = {
    "node_modules/socket.io-client/dist/socket.io.min.js": "socket.io.min.js",
    "node_modules/socket.io-client/dist/socket.io.min.js.map": "socket.io.min.js.map",
}
NO_NPM = (
    "raft-textbook's build needs npm to install the visualizer's front-end libraries "
    "(socket.io-client, pinned in package-lock.json). Install Node.js and npm, for example "
    "`apt-get install nodejs npm` on Debian or Ubuntu, or from https://nodejs.org, then build again."
)


class VendorBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Runs ``npm ci`` and puts the browser files where the visualizer serves them from."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(NO_NPM)
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=root,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"`npm ci` failed (exit {result.returncode}) while installing the visualizer's "
                               f"front-end libraries:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        vendor = root / VENDOR_DIR
        vendor.mkdir(parents=True, exist_ok=True)
        for source, name in VENDOR_FILES.items():
            if not (root / source).is_file():
                raise RuntimeError(f"npm ci did not install {source}; is package-lock.json up to date?")
            shutil.copy2(root / source, vendor / name)
            if version != "editable":
                build_data["force_include"][str(vendor / name)] = str(VENDOR_DIR / name)
