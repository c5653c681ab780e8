"""Only the build step pyproject.toml cannot declare: a wheel carries the bundled models.

`models/` is not a Python package, so package data cannot name it; this copies its spec.json
and ONNX graphs into the built `service/bundled_models/`, where `service.bundled_models` finds
them after a non-editable `pip install .`. Editable installs read `models/` in place.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MODELS = Path(__file__).resolve().parent / "models"
MODEL_FILES = ("spec.json", "*.onnx", "README.md")  # README.md: the model card


class BuildPyWithModels(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or not (MODELS / "spec.json").is_file():
            return  # editable: found in place; no models (e.g. a slim image): nothing to ship
        target = Path(self.build_lib) / "service" / "bundled_models"
        target.mkdir(parents=True, exist_ok=True)
        for pattern in MODEL_FILES:
            for source in sorted(MODELS.glob(pattern)):
                shutil.copyfile(source, target / source.name)


setup(cmdclass={"build_py": BuildPyWithModels})
