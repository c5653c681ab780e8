"""Settings: environment variables, flags on top, validation at start-up; no torch anywhere in
the serving code."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.cli import SERVE_FLAGS, _settings, build_parser
from service.config import Settings
from support.service import REPO_ROOT


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("CUTOUT_WORKERS", "3")
    monkeypatch.setenv("CUTOUT_QUEUE_SIZE", "0")
    monkeypatch.setenv("CUTOUT_SEGMENTER_MEAN", "[0.5, 0.5, 0.5]")
    settings = Settings()
    assert settings.workers == 3 and settings.queue_size == 0
    assert settings.segmenter_mean == (0.5, 0.5, 0.5)


def test_flags_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("CUTOUT_WORKERS", "3")
    monkeypatch.setenv("CUTOUT_PORT", "9000")
    args = build_parser().parse_args(["serve", "--workers", "2", "--threads", "1"])
    settings = _settings(args, SERVE_FLAGS)
    assert settings.workers == 2 and settings.threads_per_worker == 1
    assert settings.port == 9000  # not given as a flag: the environment's


@pytest.mark.parametrize("values", [{"tile_size": 300}, {"tile_size": 128, "tile_margin": 64},
                                    {"workers": 0}, {"matting": "sparse"}])
def test_invalid_settings_fail(values):
    with pytest.raises(ValidationError):
        Settings(**values)


def test_threads_split_the_cores_between_workers():
    settings = Settings(workers=2)
    assert settings.threads_per_worker >= 1
    assert Settings(workers=1).threads_per_worker >= settings.threads_per_worker


def test_external_segmenter_settings(tmp_path):
    path = tmp_path / "seg.onnx"
    settings = Settings(segmenter_path=path, segmenter_input_size=1024, segmenter_resize="square")
    spec = settings.pipeline_config().external_segmenter
    assert spec is not None and spec.file == str(path.resolve())
    assert spec.input_size == 1024 and spec.resize == "square" and spec.input is None


def test_serving_code_never_imports_torch():
    code = ("import sys, service.main, service.cli, service.workers.worker, service.metrics; "
            "sys.exit('torch imported' if 'torch' in sys.modules else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_readme_settings_table_is_the_generated_one():
    """Every setting, its flag and its default in the README come from the code
    (`python -m service.settings_table` regenerates the block)."""
    from service import settings_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    begin, end = readme.index(settings_table.BEGIN), readme.index(settings_table.END)
    block = readme[begin + len(settings_table.BEGIN):end].strip()
    assert block == settings_table.markdown_table()
