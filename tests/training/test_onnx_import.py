"""Weights read back out of exported graphs (`model_export.onnx_import`): the imported nets
compute what the graphs compute, in eval mode exactly and in training mode closely, and a
training run can start from a shipped graph."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_export import MATTING, SEGMENTER, _inputs, _session, _with_contrast
from test_train import _Discs

from model_export.export.onnx_writer import (
    _Probability,
    export_graph,
    random_models,
    segmenter_graph_module,
    store_weights_as_float16,
)
from model_export.models import MattingConfig, SegmenterConfig, build_matting, build_segmenter
from model_export.onnx_import import load_onnx_weights
from model_export.train.config import TrainConfig
from model_export.train.loop import Trainer
from model_export.train.tasks import SegmentationTask


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """Contrast-weighted nets (outputs spread over (0, 1)) and their float16-stored graphs."""
    out = tmp_path_factory.mktemp("import")
    segmenter, matting = random_models(seed=7)
    _with_contrast(
        segmenter, segmenter.head[0], torch.from_numpy(_inputs(SEGMENTER, 1, 64, 64, 1)), 8
    )
    _with_contrast(matting, matting.head[0], torch.from_numpy(_inputs(MATTING, 1, 64, 64, 2)), 9)
    paths = {}
    for spec, module in ((SEGMENTER, _Probability(segmenter).eval()), (MATTING, matting.eval())):
        paths[spec.file] = store_weights_as_float16(
            export_graph(module, spec, out / spec.file, (64, 96))
        )
    return paths


def _calibration(spec, batches: int = 4):
    return [torch.from_numpy(_inputs(spec, 4, 64, 64, seed=100 + i)) for i in range(batches)]


@pytest.mark.parametrize(
    "spec,build",
    [
        (SEGMENTER, lambda: _Probability(build_segmenter(SegmenterConfig()))),
        (MATTING, lambda: build_matting(MattingConfig())),
    ],
    ids=["segmenter", "matting"],
)
def test_imported_net_computes_the_graph(graphs, spec, build):
    path = graphs[spec.file]
    net = build()
    target = net.net if spec is SEGMENTER else net
    load_onnx_weights(target, path, _calibration(spec))
    x = _inputs(spec, 2, 96, 64, seed=5)
    expected = _session(path).run(None, {spec.input_name: x})[0]
    assert expected.std() > 0.1  # a near-constant output would prove nothing
    with torch.no_grad():
        got = net.eval()(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() < 1e-4

    # Training mode normalises with batch statistics: close to the graph on inputs like the
    # calibration batches, which a BatchNorm reset to identity would not be.
    batch = torch.from_numpy(_inputs(spec, 8, 64, 64, seed=999))
    with torch.no_grad():
        eval_out = net.eval()(batch)
        train_out = net.train()(batch)
    assert (train_out - eval_out).abs().mean() < 0.05


def test_a_flip_averaged_graph_gives_back_the_net_it_averages(graphs, tmp_path):
    """The flip-averaged graph runs the net once on a doubled batch, so its convs pair with
    the net's one to one: re-exporting from a shipped graph works with the option on."""
    source = build_segmenter(SegmenterConfig())
    load_onnx_weights(source, graphs[SEGMENTER.file], _calibration(SEGMENTER))
    config = SegmenterConfig(flip_average=True)
    path = export_graph(segmenter_graph_module(source.eval(), config), SEGMENTER,
                        tmp_path / SEGMENTER.file, (64, 96))
    net = build_segmenter(SegmenterConfig())
    load_onnx_weights(net, path, _calibration(SEGMENTER))
    x = _inputs(SEGMENTER, 2, 96, 64, seed=12)
    with torch.no_grad():
        expected = torch.sigmoid(source.eval()(torch.from_numpy(x))).numpy()
        got = torch.sigmoid(net.eval()(torch.from_numpy(x))).numpy()
    assert expected.std() > 0.1
    assert np.abs(got - expected).max() < 1e-4


def test_import_refuses_another_architecture(graphs):
    wider = build_segmenter(SegmenterConfig(decoder_channels=64))
    with pytest.raises(ValueError):
        load_onnx_weights(wider, graphs[SEGMENTER.file], _calibration(SEGMENTER, 1))


def test_training_run_starts_from_a_graph(graphs, tmp_path, monkeypatch):
    """`--init-weights models/segmenter.onnx`: the net and its EMA start as the graph."""
    monkeypatch.setattr(SegmentationTask, "dataset", lambda self: _Discs())
    config = TrainConfig(task="seg", run_dir=tmp_path / "run", batch_size=2, loader_workers=0,
                         init_weights=graphs[SEGMENTER.file])
    trainer = Trainer(config)
    x = _inputs(SEGMENTER, 1, 64, 96, seed=6)
    expected = _session(graphs[SEGMENTER.file]).run(None, {SEGMENTER.input_name: x})[0]
    with torch.no_grad():
        for net in (trainer.model, trainer.ema.model):
            got = torch.sigmoid(net.eval()(torch.from_numpy(x))).numpy()
            assert np.abs(got - expected).max() < 1e-4
    assert trainer.step == 0
    events = [
        json.loads(line)["event"]
        for line in (tmp_path / "run" / "train.log").read_text().splitlines()
    ]
    assert events == ["initialised"]


def test_retrain_one_stage_and_re_export_the_other(tmp_path, monkeypatch):
    """The flow that continues training from models/: a segmenter run started from the shipped
    graph, exported beside the matting graph re-exported as it is; spec.json keeps the lineage."""
    from model_export.export.__main__ import main as export_main
    from model_export.export.onnx_writer import export_all
    from model_export.models import TrimapConfig

    shipped = tmp_path / "models"
    segmenter, matting = random_models(seed=3)
    _with_contrast(matting, matting.head[0], torch.from_numpy(_inputs(MATTING, 1, 64, 64, 2)), 4)
    earlier = {"task": "matting", "time_budget_min": 99.0, "init_weights": None}
    export_all(
        shipped,
        segmenter,
        matting.eval(),
        SegmenterConfig(),
        TrimapConfig(),
        MattingConfig(),
        "v1",
        {"training": {"segmenter": {"task": "seg", "time_budget_min": 1.0}, "matting": earlier}},
        weights_dtype="float16",
    )

    monkeypatch.setattr(SegmentationTask, "dataset", lambda self: _Discs())
    monkeypatch.setattr(
        SegmentationTask, "validate", lambda self, model, limit=None: {"ccp_val_iou": 0.5}
    )
    config = TrainConfig(task="seg", run_dir=tmp_path / "run", time_budget_min=0.005, batch_size=2,
                         loader_workers=0, init_weights=shipped / "segmenter.onnx")
    Trainer(config).fit(_Discs())

    out = tmp_path / "new_models"
    export_main(["--segmenter", str(tmp_path / "run" / "last.pt"), "--matting",
                 str(shipped / "matting.onnx"), "--out", str(out), "--version", "v2",
                 "--segmenter-input-size", "448"])
    x = _inputs(MATTING, 1, 64, 96, seed=11)
    before = _session(shipped / "matting.onnx").run(None, {MATTING.input_name: x})[0]
    after = _session(out / "matting.onnx").run(None, {MATTING.input_name: x})[0]
    assert before.std() > 0.1
    assert np.abs(after - before).max() < 2e-3  # float16 storage rounds the refolded weights

    spec = json.loads((out / "spec.json").read_text())
    assert spec["segmenter"]["input_size"] == 448  # the size the service works at
    training = spec["training"]
    assert training["matting"] == earlier
    assert training["segmenter"]["init_weights"] == str(shipped / "segmenter.onnx")
    assert training["segmenter"]["initialised_from"] == {
        "version": "v1", "training": {"task": "seg", "time_budget_min": 1.0}}
