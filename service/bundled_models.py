"""Where the bundled default models are, wherever `cutout` is started from.

A wheel (`pip install .`) carries them inside the package as `service/bundled_models/` (setup.py
copies `models/` there at build time); a source tree or an editable install (`pip install -e .`)
has them in `models/` beside the `service` package. Either way the default no longer depends on
the folder the command runs in.
"""
from __future__ import annotations

from pathlib import Path

SPEC_NAME = "spec.json"
PACKAGE_DIR = Path(__file__).resolve().parent
IN_PACKAGE = PACKAGE_DIR / "bundled_models"  # a wheel install
IN_SOURCE_TREE = PACKAGE_DIR.parent / "models"  # a checkout or an editable install


def bundled_model_dir() -> Path:
    """The first of the two places that holds a spec.json; else the source tree's, so that the
    model folder check names a path and the command that fills it."""
    for candidate in (IN_PACKAGE, IN_SOURCE_TREE):
        if (candidate / SPEC_NAME).is_file():
            return candidate
    return IN_SOURCE_TREE
