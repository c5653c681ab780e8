"""The nets in eager torch: attention pooling / unpooling, encoder feature contracts, shapes of
the three stages at sizes that are multiples of 32, and the matting net's trimap fusion."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model_export.encoders import MobileNetV2Encoder, resnet18_encoder
from model_export.layers import AttentionModule, AttentionPool, AttentionUnpool
from model_export.layers.attention import window_softmax
from model_export.models import (
    MattingConfig,
    SegmenterConfig,
    build_matting,
    build_segmenter,
    fuse_with_trimap,
)

SIZES_32 = [(32, 32), (64, 96), (96, 64), (128, 160)]  # multiples of 32, square and not


@pytest.fixture(scope="module")
def segmenter() -> nn.Module:
    torch.manual_seed(0)
    return build_segmenter(SegmenterConfig()).eval()


@pytest.fixture(scope="module")
def matting() -> nn.Module:
    torch.manual_seed(0)
    net = build_matting(MattingConfig()).eval()
    with torch.no_grad():  # spread the untrained alpha over (0, 1) instead of ~0.5 everywhere
        net.head[0].weight.mul_(300.0)
    return net


def _trimap(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (n, 1, h, w), generator=g).float() / 2.0


# --------------------------------------------------------------------------- attention pooling


@pytest.mark.parametrize("value", [-30.0, -1.0, 0.0, 0.7, 30.0])
def test_constant_attention_pooling_is_average_pooling(value: float) -> None:
    x = torch.randn(2, 8, 12, 18)
    logits = torch.full_like(x, value)
    torch.testing.assert_close(AttentionPool()(x, logits), F.avg_pool2d(x, 2), rtol=0, atol=1e-6)


def test_window_constant_attention_pooling_is_average_pooling() -> None:
    """Constant within each 2x2 window (different across windows) is uniform too."""
    x = torch.randn(2, 8, 12, 18)
    logits = F.interpolate(torch.randn(2, 8, 6, 9) * 5, scale_factor=2.0, mode="nearest")
    torch.testing.assert_close(AttentionPool()(x, logits), F.avg_pool2d(x, 2), rtol=0, atol=1e-6)


def test_window_softmax_sums_to_one_per_window() -> None:
    attention = torch.randn(3, 5, 16, 10) * 4
    weights = window_softmax(attention)
    assert weights.shape == attention.shape
    assert (weights > 0).all()
    window_sums = F.avg_pool2d(weights, 2) * 4
    torch.testing.assert_close(window_sums, torch.ones_like(window_sums), rtol=0, atol=1e-6)


def test_window_softmax_is_softmax_over_each_window() -> None:
    attention = torch.randn(1, 2, 4, 6)
    weights = window_softmax(attention)
    windows = F.unfold(attention, 2, stride=2)  # [N, C*4, L]
    expected = torch.softmax(windows.view(1, 2, 4, -1), dim=2).view(1, 8, -1)
    folded = F.fold(expected, (4, 6), 2, stride=2)
    torch.testing.assert_close(weights, folded, rtol=0, atol=1e-6)


def test_attention_pool_is_softmax_weighted_sum_of_sigmoid_attention() -> None:
    x = torch.randn(2, 4, 8, 12)
    logits = torch.randn(2, 4, 8, 12) * 3
    weights = window_softmax(torch.sigmoid(logits))
    expected = F.avg_pool2d(weights * x, 2) * 4  # sum over each window
    torch.testing.assert_close(AttentionPool()(x, logits), expected, rtol=1e-5, atol=1e-6)
    # A convex combination: each pooled value lies within its window's range.
    pooled = AttentionPool()(x, logits)
    assert (pooled <= F.max_pool2d(x, 2) + 1e-6).all()
    assert (pooled >= -F.max_pool2d(-x, 2) - 1e-6).all()


# --------------------------------------------------------------------------- attention unpooling


def test_unpooling_with_zero_logits_halves_nearest_upsampling() -> None:
    x = torch.randn(2, 6, 5, 7)
    out = AttentionUnpool()(x, torch.zeros(2, 6, 10, 14))  # sigmoid(0) = 0.5
    assert out.shape == (2, 6, 10, 14)
    torch.testing.assert_close(out, 0.5 * x.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_unpooling_weights_each_position_by_sigmoid() -> None:
    x = torch.randn(1, 3, 4, 4)
    logits = torch.randn(1, 3, 8, 8) * 3
    out = AttentionUnpool()(x, logits)
    up = x.repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(out, up * torch.sigmoid(logits))
    # Saturated logits: +inf passes the upsampled value, -inf zeroes it.
    gate = torch.full((1, 3, 8, 8), 50.0)
    torch.testing.assert_close(AttentionUnpool()(x, gate), up)
    assert (AttentionUnpool()(x, -gate).abs() < 1e-12).all()


# --------------------------------------------------------------------------- attention module


@pytest.mark.parametrize("channels", [16, 24, 96])
def test_attention_module_layout_and_shapes(channels: int) -> None:
    module = AttentionModule(channels).eval()
    assert len(module.branches) == 4
    for branch in module.branches:
        assert branch.kernel_size == (4, 4) and branch.stride == (2, 2) and branch.groups == 2
    assert sum(b.out_channels for b in module.branches) == 2 * channels
    assert isinstance(module.norm, nn.GroupNorm) and module.norm.num_channels == 2 * channels
    x = torch.randn(2, channels, 16, 24)
    encoder_logits, decoder_logits = module(x)
    assert encoder_logits.shape == decoder_logits.shape == x.shape


def test_attention_module_rejects_channels_not_divisible_by_groups() -> None:
    with pytest.raises(ValueError, match="divisible"):
        AttentionModule(15)


# --------------------------------------------------------------------------- encoders


@pytest.mark.parametrize(
    "output_stride,strides",
    [(16, [2, 4, 8, 16, 16]), (8, [2, 4, 8, 8, 8]), (32, [2, 4, 8, 16, 32])],
)
def test_resnet18_feature_contract(output_stride: int, strides: list[int]) -> None:
    encoder = resnet18_encoder(output_stride).eval()
    assert encoder.out_channels == [64, 64, 128, 256, 512]
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [
        (c, 64 // s, 96 // s) for c, s in zip(encoder.out_channels, strides, strict=True)
    ]


def test_mobilenetv2_attention_levels() -> None:
    encoder = MobileNetV2Encoder(in_channels=4).eval()
    assert encoder.skip_channels == [32, 16, 24, 32, 96]
    assert encoder.out_channels == 320
    with torch.no_grad():
        out = encoder(torch.randn(1, 4, 64, 96))
    strides = [1, 2, 4, 8, 16]
    expected = [(c, 64 // s, 96 // s) for c, s in zip(encoder.skip_channels, strides, strict=True)]
    assert [tuple(t.shape[1:]) for t in out.skips] == expected
    assert [tuple(t.shape[1:]) for t in out.decoder_logits] == expected
    assert tuple(out.bottleneck.shape[1:]) == (320, 2, 3)


# --------------------------------------------------------------------------- stages


@pytest.mark.parametrize("size", SIZES_32, ids=[f"{h}x{w}" for h, w in SIZES_32])
def test_segmenter_shapes(segmenter: nn.Module, size: tuple[int, int]) -> None:
    h, w = size
    with torch.no_grad():
        features = segmenter.encoder(torch.randn(1, 3, h, w))
        decoded = segmenter.decoder(features)
        logits = segmenter(torch.randn(2, 3, h, w))
    assert decoded.shape == (1, 128, h // 4, w // 4)
    assert logits.shape == (2, 1, h, w)


@pytest.mark.parametrize("size", SIZES_32, ids=[f"{h}x{w}" for h, w in SIZES_32])
def test_matting_output_in_unit_range_and_fused(matting: nn.Module, size: tuple[int, int]) -> None:
    h, w = size
    trimap = _trimap(2, h, w, seed=h + w)
    x = torch.cat([torch.randn(2, 3, h, w), trimap], dim=1)
    with torch.no_grad():
        alpha = matting(x)
        raw = matting.forward_raw(x)
    assert alpha.shape == (2, 1, h, w)
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    known = (trimap == 0.0) | (trimap == 1.0)
    assert torch.equal(alpha[known], trimap[known])
    unknown = trimap == 0.5
    assert torch.equal(alpha[unknown], raw[unknown])
    assert raw.std() > 0.05  # the check above is not trivially on a constant output


def test_fuse_with_trimap_keeps_known_regions() -> None:
    raw = torch.tensor([0.1, 0.9, 0.4, 0.6, 0.3, 0.7])
    trimap = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.5, 0.5])
    assert fuse_with_trimap(raw, trimap).tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0, 0.3, 0.7])


@pytest.mark.parametrize("size", [(100, 70), (48, 48)])
def test_matting_needs_multiples_of_32(matting: nn.Module, size: tuple[int, int]) -> None:
    """Sides that are not multiples of 32 break the skip concatenation: the caller pads
    (replicate) up to the next multiple of 32 and crops the output back (docs/architecture.md)."""
    with pytest.raises(RuntimeError), torch.no_grad():
        matting(torch.rand(1, 4, *size))


def test_padding_rule_replicate_then_crop(matting: nn.Module) -> None:
    h, w = 100, 70
    x = torch.cat([torch.randn(1, 3, h, w), _trimap(1, h, w, seed=7)], dim=1)
    ph, pw = -h % 32, -w % 32
    padded = F.pad(x, (0, pw, 0, ph), mode="replicate")
    assert padded.shape[2:] == (128, 96)
    with torch.no_grad():
        alpha = matting(padded)[:, :, :h, :w]
    assert alpha.shape == (1, 1, h, w)
    trimap = x[:, 3:4]
    known = trimap != 0.5
    assert torch.equal(alpha[known], trimap[known])


def test_parameter_counts_are_stable(segmenter: nn.Module) -> None:
    """A training run depends on the architecture: a change here must be deliberate."""
    matting = build_matting(MattingConfig())
    assert sum(p.numel() for p in segmenter.parameters()) == 11_651_505
    assert sum(p.numel() for p in matting.parameters()) == 2_311_905
