"""Weight-space soups: BatchNorm folding keeps the function, the ends of the line are the two
nets, and the export reads what the soup writes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from model_export.models import MattingConfig, SegmenterConfig, build_matting, build_segmenter
from model_export.soup import fold_batchnorms, interpolate, main, soup
from model_export.trained import load_trained

BUNDLED = Path(__file__).resolve().parents[2] / "models"


def _trained_looking(net: nn.Module, seed: int) -> nn.Module:
    """Random running statistics and affines, as a trained net has (fresh ones are 0 / 1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.2)
    return net.eval()


def _segmenter(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return _trained_looking(build_segmenter(SegmenterConfig()), seed)


def _image() -> torch.Tensor:
    return torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(7))


def _checkpoint(net: nn.Module, path, run: str, step: int) -> None:
    torch.save({"ema": net.state_dict(), "model_config": SegmenterConfig().model_dump(),
                "train_config": {"task": "seg", "run_dir": run}, "step": step}, path)


@pytest.mark.parametrize("build, channels", [
    (lambda: _segmenter(0), 3),
    (lambda: _trained_looking(build_matting(MattingConfig()), 1), 4)])
def test_folding_the_batchnorms_keeps_the_eval_function(build, channels):
    net = build()
    x = torch.randn(1, channels, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        before = net(x)
        fold_batchnorms(net)
        after = net(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(float(m.running_mean.abs().max()) == 0.0 for m in norms)


def test_the_ends_of_the_line_are_the_two_nets_and_the_middle_is_neither():
    a, b = _segmenter(0), _segmenter(1)
    x = _image()
    with torch.no_grad():
        out_a, out_b = a(x), b(x)
    ends = {}
    for weight in (0.0, 0.5, 1.0):
        net = build_segmenter(SegmenterConfig()).eval()
        net.load_state_dict(interpolate(_segmenter(0), _segmenter(1), weight))
        with torch.no_grad():
            ends[weight] = net(x)
    torch.testing.assert_close(ends[0.0], out_a, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ends[1.0], out_b, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(ends[0.5], out_a, atol=1e-3)
    assert not torch.allclose(ends[0.5], out_b, atol=1e-3)


def test_interpolating_raw_weights_of_one_function_stored_two_ways_is_what_folding_fixes():
    """The same function with another BatchNorm parametrisation (as a graph re-imported with
    other calibration statistics): the folded soup of the two is that function again."""
    a = _segmenter(0)
    b = _segmenter(0)
    with torch.no_grad():  # rescale one norm's statistics and undo it in its affine
        norm = next(m for m in b.modules() if isinstance(m, nn.BatchNorm2d))
        old_std = torch.sqrt(norm.running_var + norm.eps)
        norm.running_var.mul_(4.0).add_(3.0 * norm.eps)
        norm.weight.mul_(2.0)
        norm.running_mean.add_(1.0)
        norm.bias.add_(norm.weight * 1.0 / (2.0 * old_std))
    x = _image()
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=1e-4, atol=1e-4)
        net = build_segmenter(SegmenterConfig()).eval()
        net.load_state_dict(interpolate(a, b, 0.5))
        torch.testing.assert_close(net(x), _segmenter(0)(x), rtol=1e-4, atol=1e-4)


def test_soup_cli_writes_a_checkpoint_the_export_reads(tmp_path):
    a, b = _segmenter(0), _segmenter(1)
    _checkpoint(a, tmp_path / "a.pt", "runs/a", 120)
    _checkpoint(b, tmp_path / "b.pt", "runs/b", 80)
    main(["seg", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--weight", "0.25",
          "--out", str(tmp_path / "soup" / "seg.pt")])
    net, config, state = load_trained(
        tmp_path / "soup" / "seg.pt", build_segmenter, SegmenterConfig
    )
    assert config == SegmenterConfig()
    assert state["train_config"]["run_dir"] == "runs/b"
    assert state["train_config"]["soup"]["weights"] == [0.75, 0.25]
    assert state["train_config"]["soup"]["ingredients"] == [
        {"path": str(tmp_path / "a.pt"), "step": 120}, {"path": str(tmp_path / "b.pt"), "step": 80}]
    expected = build_segmenter(SegmenterConfig()).eval()
    expected.load_state_dict(interpolate(_segmenter(0), _segmenter(1), 0.25))
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(_image()), expected(_image()))


def test_a_soup_needs_one_architecture_and_a_weight_in_range(tmp_path):
    _checkpoint(_segmenter(0), tmp_path / "a.pt", "runs/a", 1)
    served = _segmenter(1)  # another working size is the same net
    torch.save({"ema": served.state_dict(),
                "model_config": SegmenterConfig(input_size=448).model_dump(),
                "train_config": {}}, tmp_path / "served.pt")
    assert (
        soup("seg", tmp_path / "a.pt", tmp_path / "served.pt", 0.5)["model_config"]["input_size"]
        == 448
    )
    other = build_segmenter(SegmenterConfig(decoder_channels=64)).eval()
    torch.save({"ema": other.state_dict(),
                "model_config": SegmenterConfig(decoder_channels=64).model_dump(),
                "train_config": {}}, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="different configs"):
        soup("seg", tmp_path / "a.pt", tmp_path / "b.pt", 0.5)
    with pytest.raises(ValueError, match="weight"):
        interpolate(_segmenter(0), _segmenter(1), 1.5)


def test_a_soup_of_the_shipped_graph_records_its_version_and_lineage(tmp_path):
    graph = BUNDLED / "segmenter.onnx"
    spec = json.loads((BUNDLED / "spec.json").read_text())
    net, config, _ = load_trained(graph, build_segmenter, SegmenterConfig)
    torch.save({"ema": net.state_dict(), "model_config": config.model_dump(),
                "train_config": {"task": "seg", "run_dir": "runs/next"}, "step": 42},
               tmp_path / "next.pt")
    record = soup("seg", graph, tmp_path / "next.pt", 0.5)["train_config"]["soup"]
    first, second = record["ingredients"]
    assert first["version"] == spec["version"]
    # The shipped graph's own soup record comes along, so the lineage survives the next ship.
    assert first.get("soup") == spec["training"]["segmenter"].get("soup")
    assert second == {"path": str(tmp_path / "next.pt"), "step": 42}
