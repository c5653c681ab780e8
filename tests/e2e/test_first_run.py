"""A first run from any folder: `cutout serve` and `cutout remove` find the bundled models from
the installed package (editable or wheel), and bad settings are refused in one line that names
the CUTOUT_ variable or the flag."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from support.cli import clean_env, cutout_command, cutout_serve
from support.service import REPO_ROOT, decode, disc_image, encoded

MODELS = REPO_ROOT / "models"
BUNDLED_VERSION = json.loads((MODELS / "spec.json").read_text())["version"]


def test_serve_from_another_folder_is_ready_with_the_bundled_models(tmp_path):
    with cutout_serve(tmp_path, "--threads", "1", "--log-level", "warning") as url:
        assert httpx.get(f"{url}/readyz").json()["model_version"] == BUNDLED_VERSION
        answer = httpx.post(f"{url}/v1/cutout", content=encoded(disc_image(96, 64)), timeout=60)
    assert answer.status_code == 200
    assert decode(answer.content).mode == "RGBA"


def test_remove_from_another_folder_uses_the_bundled_models(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(encoded(disc_image(120, 90), "JPEG"))
    result = subprocess.run(
        [*cutout_command(), "remove", "photo.jpg", "-o", "out", "--threads", "1", "-q"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    cutout = decode((tmp_path / "out" / "photo.png").read_bytes())
    assert cutout.mode == "RGBA" and cutout.size == (120, 90)


@pytest.mark.slow
def test_a_wheel_install_carries_and_finds_the_models(tmp_path):
    """`pip install .` (not editable): the models travel inside the package and are found there,
    from a folder that has no models/ of its own."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                   check=True, timeout=600, capture_output=True)
    wheel = next((tmp_path / "dist").glob("cutout-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    spec = json.loads((MODELS / "spec.json").read_text())
    shipped = {"spec.json"} | {spec[stage]["file"] for stage in ("segmenter", "trimap", "matting")}
    assert {f"service/bundled_models/{name}" for name in shipped} <= names
    assert "service/web/index.html" in names  # the page ships too

    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:  # what pip's installer does with a pure wheel
        archive.extractall(site)
    probe = ("from service.config import Settings; from service.pipeline.spec import load_spec; "
             "s = Settings(); print(s.model_dir); print(load_spec(s.model_dir).version)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=True,
                            env=clean_env(PYTHONPATH=str(site), PYTHONNOUSERSITE="1"))
    model_dir, version = result.stdout.split()
    assert Path(model_dir) == site / "service" / "bundled_models"
    assert version == BUNDLED_VERSION


@pytest.mark.parametrize(("argv", "env", "named", "rule"), [
    (["serve"], {"CUTOUT_WORKERS": "0"}, "CUTOUT_WORKERS=0", "greater than or equal to 1"),
    (["serve", "--workers", "0"], {}, "--workers 0", "greater than or equal to 1"),
    (["serve"], {"CUTOUT_TILE_SIZE": "100"}, "CUTOUT_TILE_SIZE", "was retired"),
    (["serve"], {"CUTOUT_PORT": "http"}, "CUTOUT_PORT=http", "valid integer"),
    (["serve"], {"CUTOUT_SEGMENTER_SPEC": "seg.json"}, "CUTOUT_SEGMENTER_SPEC=seg.json",
     "does not exist"),
    (["remove", "x.jpg", "-o", "out", "--matting-side", "-1"], {}, "--matting-side -1",
     "greater than or equal to 0"),
])
def test_bad_settings_are_one_line_naming_the_variable(tmp_path, argv, env, named, rule):
    result = subprocess.run([*cutout_command(), *argv], cwd=tmp_path, env=clean_env(**env),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0] and rule in lines[0]
    assert "pydantic" not in lines[0] and "validation error" not in lines[0]
