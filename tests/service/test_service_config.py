"""Settings: environment variables, flags on top, validation at start-up; no torch anywhere in
the serving code."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.cli import SERVE_FLAGS, _settings, build_parser
from service.config import RETIRED, Settings
from service.errors import ModelFolderError
from service.pipeline import PipelineConfig
from service.pipeline.spec import InferenceSpec, load_segmenter_spec, load_spec
from support.service import REPO_ROOT, colour_segmenter, colour_segmenter_spec

MAX_SETTINGS = 35


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("CUTOUT_WORKERS", "3")
    monkeypatch.setenv("CUTOUT_QUEUE_SIZE", "0")
    monkeypatch.setenv("CUTOUT_MATTING_SIDE", "768")
    settings = Settings()
    assert settings.workers == 3 and settings.queue_size == 0
    assert settings.pipeline_config().matting_side == 768


def test_flags_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("CUTOUT_WORKERS", "3")
    monkeypatch.setenv("CUTOUT_PORT", "9000")
    args = build_parser().parse_args(["serve", "--workers", "2", "--threads", "1"])
    settings = _settings(args, SERVE_FLAGS)
    assert settings.workers == 2 and settings.threads_per_worker == 1
    assert settings.port == 9000  # not given as a flag: the environment's


@pytest.mark.parametrize("values", [{"workers": 0}, {"matting_side": -1}, {"max_pixels": 0},
                                    {"segmenter_spec": "/nonexistent/segmenter.json"}])
def test_invalid_settings_fail(values):
    with pytest.raises(ValidationError):
        Settings(**values)


def test_each_pipeline_setting_is_declared_once():
    """Settings inherit the pipeline's fields (the same declaration, so the same default), and
    hand all of them on; there are at most MAX_SETTINGS settings in all."""
    assert len(Settings.model_fields) <= MAX_SETTINGS
    for name, field in PipelineConfig.model_fields.items():
        assert Settings.model_fields[name].default == field.default, name
        assert Settings.model_fields[name].description == field.description, name
    config = Settings(workers=1, threads=3, matting_side=640).pipeline_config()
    assert config.threads == 3 and config.matting_side == 640
    assert config.model_dir.is_absolute()
    defaults = PipelineConfig()
    assert config.model_copy(update={"threads": None, "matting_side": 512}) == defaults


@pytest.mark.parametrize("name", ["segmenter_path", "segmenter_flip", "tile_size", "matting",
                                  "matting_weight", "image_url_allow_loopback"])
def test_a_retired_setting_fails_and_names_its_replacement(monkeypatch, name):
    monkeypatch.setenv(f"CUTOUT_{name.upper()}", "1")
    with pytest.raises(ValidationError, match=f"CUTOUT_{name.upper()} was retired"):
        Settings()
    assert name in RETIRED and name not in Settings.model_fields


def test_the_bundled_spec_declares_every_inference_value_it_was_measured_with():
    """models/spec.json writes its whole inference block (the values its figures were measured
    with), and the service reads those, not the defaults."""
    written = json.loads((REPO_ROOT / "models" / "spec.json").read_text())["inference"]
    assert set(written) == set(InferenceSpec.model_fields)
    assert load_spec(REPO_ROOT / "models").inference == InferenceSpec(**written)


def test_a_spec_without_the_inference_block_gets_the_values_older_exports_had(tmp_path):
    """Exports from before the block existed were measured with matting_weight 0.5, backdrop
    distance 6 and zoom_min_gain 1.15: those are what such a spec.json still gets."""
    spec = json.loads((REPO_ROOT / "models" / "spec.json").read_text())
    del spec["inference"]
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    for stage in ("segmenter", "trimap", "matting"):
        (tmp_path / spec[stage]["file"]).write_bytes(b"")  # load_spec checks the files exist
    inference = load_spec(tmp_path).inference
    assert inference == InferenceSpec()
    assert (inference.matting_weight, inference.backdrop_distance,
            inference.zoom_min_gain) == (0.5, 6.0, 1.15)


def test_threads_split_the_cores_between_workers():
    settings = Settings(workers=2)
    assert settings.threads_per_worker >= 1
    assert Settings(workers=1).threads_per_worker >= settings.threads_per_worker


def test_an_external_segmenter_is_one_spec_file(tmp_path):
    """CUTOUT_SEGMENTER_SPEC names a JSON file; its graph is found beside it, and the fields it
    leaves out get the defaults."""
    graph = colour_segmenter(tmp_path / "seg.onnx")
    spec_file = colour_segmenter_spec(graph, input_size=1024, resize="square")
    config = Settings(segmenter_spec=spec_file).pipeline_config()
    assert config.segmenter_spec == spec_file.resolve()
    spec = load_segmenter_spec(config.segmenter_spec)
    assert spec.file == str(graph.resolve())
    assert spec.input_size == 1024 and spec.resize == "square" and spec.input is None
    assert spec.size_multiple == 32 and spec.activation == "none"


def test_a_segmenter_spec_that_names_no_graph_fails_with_its_path(tmp_path):
    spec_file = tmp_path / "seg.json"
    spec_file.write_text('{"file": "missing.onnx"}')
    with pytest.raises(ModelFolderError, match="missing.onnx"):
        load_segmenter_spec(spec_file)
    spec_file.write_text('{"input_size": 320}')
    with pytest.raises(ModelFolderError, match="not a valid segmenter spec"):
        load_segmenter_spec(spec_file)


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
