"""A trained EfficientNet-Lite0 segmenter grown into a deeper Lite1 one (`grow_segmenter`): the
grown net computes what it grew from, so a Lite1 run can start at the shipped net's quality."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_export import MATTING, SEGMENTER, _inputs, _session, _with_contrast
from test_train import _Discs

from model_export.encoders.efficientnet_lite import lite_stages
from model_export.export.onnx_writer import export_all, random_models
from model_export.models import MattingConfig, SegmenterConfig, TrimapConfig, build_segmenter
from model_export.models.deeplabv3plus import grow_segmenter
from model_export.train.config import TrainConfig
from model_export.train.loop import Trainer
from model_export.train.tasks import SegmentationTask
from model_export.trained import load_trained


def _trained_lite0(seed: int = 3) -> torch.nn.Module:
    """A Lite0 segmenter whose output varies over (0, 1), and whose every BatchNorm holds
    statistics of its own, as a trained net's do."""
    torch.manual_seed(seed)
    net = build_segmenter(SegmenterConfig(encoder="efficientnet_lite0"))
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    _with_contrast(net, net.head[0], torch.from_numpy(_inputs(SEGMENTER, 1, 64, 64, 1)), 8)
    return net.eval()


def test_lite1_is_lite0_deeper_and_lite2_wider_too() -> None:
    lite0, lite1, lite2 = (lite_stages(f"efficientnet_lite{n}") for n in range(3))
    assert [s[3] for s in lite1] == [s[3] for s in lite0]
    assert sum(s[4] for s in lite1) == sum(s[4] for s in lite0) + 5
    assert [s[3] for s in lite2] == [16, 24, 48, 88, 120, 208, 352]  # TensorFlow's round_filters


def test_a_grown_segmenter_computes_what_it_grew_from() -> None:
    source = _trained_lite0()
    grown = build_segmenter(SegmenterConfig(encoder="efficientnet_lite1"))
    grow_segmenter(source, grown)
    x = torch.from_numpy(_inputs(SEGMENTER, 2, 96, 64, seed=4))
    with torch.no_grad():
        expected = torch.sigmoid(source(x))
        got = torch.sigmoid(grown.eval()(x))
    assert expected.std() > 0.1  # a near-constant output would prove nothing
    assert (got - expected).abs().max() < 1e-5
    # The new blocks are there to learn: gradients reach every one of them.
    grown.train()
    torch.sigmoid(grown(x)).mean().backward()
    extra = [block for trained, stage in zip(source.encoder.stages, grown.encoder.stages,
                                             strict=True) for block in list(stage)[len(trained):]]
    assert len(extra) == 5
    assert all(block.project[1].weight.grad.abs().sum() > 0 for block in extra)


def test_growing_into_a_wider_net_is_refused() -> None:
    with pytest.raises(ValueError, match="not a deepening"):
        grow_segmenter(_trained_lite0(),
                       build_segmenter(SegmenterConfig(encoder="efficientnet_lite2")))
    with pytest.raises(ValueError, match="EfficientNet-Lite"):
        grow_segmenter(_trained_lite0(), build_segmenter(SegmenterConfig(encoder="resnet18")))


@pytest.fixture(scope="module")
def shipped_lite0(tmp_path_factory):
    """A Lite0 segmenter and the models/ folder exported from it (spec.json says Lite0)."""
    source = _trained_lite0()
    _, matting = random_models(seed=5)
    # Trained-like norms, so the matting graph reads back in (onnx_import pairs them by op).
    _with_contrast(matting, matting.head[0], torch.from_numpy(_inputs(MATTING, 1, 64, 64, 2)), 4)
    out = tmp_path_factory.mktemp("models")
    export_all(out, source, matting.eval(), SegmenterConfig(encoder="efficientnet_lite0"),
               TrimapConfig(), MattingConfig(), "v1", weights_dtype="float16")
    return source, out


def test_a_lite1_run_starts_from_a_shipped_lite0_graph(shipped_lite0, tmp_path,
                                                       monkeypatch) -> None:
    """`--encoder efficientnet_lite1 --init-weights models/segmenter.onnx` with a Lite0 graph:
    the run's net and EMA start as that graph, grown."""
    source, shipped = shipped_lite0
    monkeypatch.setattr(SegmentationTask, "dataset", lambda self: _Discs())
    trainer = Trainer(TrainConfig(task="seg", run_dir=tmp_path / "run", batch_size=2,
                                  loader_workers=0, init_weights=shipped / SEGMENTER.file,
                                  segmenter=SegmenterConfig(encoder="efficientnet_lite1")))
    x = torch.from_numpy(_inputs(SEGMENTER, 1, 64, 96, seed=6))
    with torch.no_grad():
        expected = torch.sigmoid(source(x)).numpy()
        for net in (trainer.model, trainer.ema.model):
            got = torch.sigmoid(net.eval()(x)).numpy()
            assert np.abs(got - expected).max() < 2e-3  # float16 storage, as shipped
    assert len(list(trainer.model.encoder.stages.modules())) > \
        len(list(source.encoder.stages.modules()))
    log = [json.loads(line) for line in (tmp_path / "run" / "train.log").read_text().splitlines()]
    assert log[0]["event"] == "initialised" and log[0]["grown_from"] == "efficientnet_lite0"


def test_export_grows_a_shipped_segmenter_into_lite1(shipped_lite0, tmp_path) -> None:
    """`export --segmenter-encoder efficientnet_lite1`: a bigger graph with the same masks, so
    bench.latency measures what the deeper encoder costs before any run trains it."""
    from model_export.export.__main__ import main as export_main

    _, shipped = shipped_lite0
    out = tmp_path / "grown"
    export_main(["--segmenter", str(shipped / SEGMENTER.file), "--matting",
                 str(shipped / "matting.onnx"), "--out", str(out), "--version", "v1-lite1",
                 "--segmenter-encoder", "efficientnet_lite1"])
    assert json.loads((out / "spec.json").read_text())["segmenter"]["encoder"] == \
        "efficientnet_lite1"
    assert (out / SEGMENTER.file).stat().st_size > (shipped / SEGMENTER.file).stat().st_size
    x = _inputs(SEGMENTER, 1, 96, 64, seed=8)
    before = _session(shipped / SEGMENTER.file).run(None, {SEGMENTER.input_name: x})[0]
    after = _session(out / SEGMENTER.file).run(None, {SEGMENTER.input_name: x})[0]
    assert before.std() > 0.1
    assert np.abs(after - before).max() < 2e-3  # float16 storage rounds the refolded weights
    # The grown graph reads back (the exporter shares the copied blocks' equal tensors), so a
    # run can start from it and a soup take it.
    source, _ = shipped_lite0
    net, config, _ = load_trained(out / SEGMENTER.file, build_segmenter, SegmenterConfig)
    assert config.encoder == "efficientnet_lite1"
    x = torch.from_numpy(_inputs(SEGMENTER, 1, 64, 96, seed=11))
    with torch.no_grad():
        expected = torch.sigmoid(source(x)).numpy()
        got = torch.sigmoid(net.eval()(x)).numpy()
    assert np.abs(got - expected).max() < 2e-3


def test_a_grown_run_soups_with_its_shipped_lite0_start(shipped_lite0, tmp_path) -> None:
    """`soup seg models/segmenter.onnx runs/lite1/best.pt`: the Lite0 end is grown first, so at
    weight 0 the soup is the shipped net (grown) and halfway it lies between the two."""
    from model_export.soup import soup

    source, shipped = shipped_lite0
    torch.manual_seed(9)
    lite1_config = SegmenterConfig(encoder="efficientnet_lite1")
    run = build_segmenter(lite1_config)
    grow_segmenter(source, run)
    with torch.no_grad():  # a run that moved every weight away from its start
        for value in run.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.randn_like(value) * 0.02)
    checkpoint = tmp_path / "best.pt"
    torch.save({"ema": run.state_dict(), "model_config": lite1_config.model_dump(),
                "train_config": {}, "step": 7}, checkpoint)
    x = torch.from_numpy(_inputs(SEGMENTER, 1, 64, 96, seed=10))

    def output(state: dict) -> np.ndarray:
        net = build_segmenter(lite1_config)
        net.load_state_dict(state["ema"])
        with torch.no_grad():
            return torch.sigmoid(net.eval()(x)).numpy()

    start = soup("seg", shipped / SEGMENTER.file, checkpoint, 0.0)
    with torch.no_grad():
        expected = torch.sigmoid(source(x)).numpy()
        moved = torch.sigmoid(run.eval()(x)).numpy()
    assert np.abs(output(start) - expected).max() < 2e-3  # float16 storage, as shipped
    assert np.abs(moved - expected).max() > 1e-2  # the two ends differ, so the test can fail
    ingredients = start["train_config"]["soup"]["ingredients"]
    assert ingredients[0]["grown_from"] == "efficientnet_lite0"
    halfway = output(soup("seg", shipped / SEGMENTER.file, checkpoint, 0.5))
    assert np.abs(halfway - expected).max() > 1e-4 and np.abs(halfway - moved).max() > 1e-4
