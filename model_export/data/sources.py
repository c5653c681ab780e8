"""Where each registry source puts its files, and its licence (recorded in the manifest)."""
from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO / ".cache" / "data"
NPM_ROOT = REPO / ".cache" / "npm" / "node_modules"

DEBIAN_PACKAGES = (
    "tuxpaint-stamps-default",
    "gnome-backgrounds",
    "desktop-base",
    "gcompris-qt-data",
    "openclipart-svg",
    "sweethome3d-furniture",  # OBJ models, rendered by furniture.py
)
NPM_PACKAGES = ("@lobehub/fluent-emoji-3d", "@imgly/background-removal-data")


def debian_installed(package: str) -> bool:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                             capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return False
    return "install ok installed" in out
