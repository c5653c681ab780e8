"""Install the registry sources of the training data with their ordinary clients.

Build time only: the service never fetches anything. Debian packages go to the system
(``apt-get install``), npm packages under ``.cache/npm`` (``npm install --prefix``). Every
source is optional for the builder: whatever is missing is skipped and recorded in the manifest.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .sources import DEBIAN_PACKAGES, NPM_PACKAGES, REPO, debian_installed

NPM_PREFIX = REPO / ".cache" / "npm"
FETCH_LOG = REPO / ".cache" / "fetch.json"


def _run(cmd: list[str]) -> tuple[int, float]:
    print("+", " ".join(cmd), flush=True)
    start = time.perf_counter()
    rc = subprocess.call(cmd)
    return rc, time.perf_counter() - start


def _du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def fetch(debian: bool = True, npm: bool = True, update: bool = True) -> dict[str, object]:
    """Install the sources; return (and write to .cache/fetch.json) what happened."""
    log: dict[str, object] = {}
    if debian:
        if shutil.which("apt-get") is None:
            log["debian"] = "apt-get not found: Debian sources skipped"
        else:
            if update:
                rc, seconds = _run(["apt-get", "update"])
                log["apt_update"] = {"rc": rc, "seconds": round(seconds, 1)}
            for package in DEBIAN_PACKAGES:
                if debian_installed(package):
                    log[package] = {"rc": 0, "seconds": 0.0, "note": "already installed"}
                    continue
                rc, seconds = _run(["apt-get", "install", "-y", "--no-install-recommends", package])
                log[package] = {"rc": rc, "seconds": round(seconds, 1)}
    if npm:
        if shutil.which("npm") is None:
            log["npm"] = "npm not found: npm sources skipped"
        else:
            NPM_PREFIX.mkdir(parents=True, exist_ok=True)
            for package in NPM_PACKAGES:
                target = NPM_PREFIX / "node_modules" / package
                if target.exists():
                    log[package] = {"rc": 0, "seconds": 0.0, "note": "already installed"}
                else:
                    rc, seconds = _run(["npm", "install", "--no-audit", "--no-fund",
                                        "--prefix", str(NPM_PREFIX), package])
                    log[package] = {"rc": rc, "seconds": round(seconds, 1)}
                if target.exists():
                    entry = log[package]
                    assert isinstance(entry, dict)
                    entry["bytes"] = _du(target)
    FETCH_LOG.parent.mkdir(parents=True, exist_ok=True)
    FETCH_LOG.write_text(json.dumps(log, indent=2))
    print(json.dumps(log, indent=2))
    failed = [k for k, v in log.items() if isinstance(v, dict) and v.get("rc", 0) != 0]
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return log
