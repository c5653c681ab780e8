"""Data builder and datasets on a tiny local sample (made here), plus CCP from ../shared if
present."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_export.data import MattingDataset, SegmentationDataset, evaluation_sets
from model_export.data.build import Roots, build
from model_export.data.synth import IMAGENET_MEAN, IMAGENET_STD

SHARED_CCP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ccp_fashion"
EVAL = {"studio": 3, "cluttered": 3}


def _make_sources(root: Path) -> Roots:
    rng = np.random.default_rng(0)
    stamps = root / "stamps"
    for k in range(8):
        folder = stamps / ("animals" if k % 2 else "food")
        folder.mkdir(parents=True, exist_ok=True)
        h, w = int(rng.integers(60, 140)), int(rng.integers(60, 140))
        alpha = np.zeros((h * 4, w * 4), np.uint8)
        cv2.ellipse(alpha, (w * 2, h * 2), (w * 2 - 20, h * 2 - 30), float(k * 20), 0, 360, 255, -1)
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)  # soft edges
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"thing{k}.png"), np.dstack([rgb, alpha]))
    cv2.imwrite(
        str(stamps / "food" / "opaque.png"), np.full((80, 80, 4), 255, np.uint8)
    )  # no alpha: rejected
    backgrounds = root / "backgrounds"
    backgrounds.mkdir()
    for k in range(4):
        photo = cv2.GaussianBlur(rng.integers(0, 256, (420, 560, 3), dtype=np.uint8), (0, 0), 3)
        cv2.imwrite(str(backgrounds / f"photo{k}.jpg"), photo)
    missing = root / "not-installed"
    ccp = SHARED_CCP if (SHARED_CCP / "image").is_dir() else missing
    return Roots(tuxpaint=stamps, emoji3d=missing, openclipart=missing, gnome=backgrounds,
                 desktop_base=missing, gcompris=missing, furniture=missing, ccp=ccp)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Roots, dict]:
    root = tmp_path_factory.mktemp("data")
    roots = _make_sources(root / "src")
    cache = root / "cache"
    manifest = build(cache, seed=0, roots=roots, eval_counts=EVAL)
    return cache, roots, manifest


def _files(cache: Path) -> dict[str, float]:
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*")
            if p.is_file() and p.name not in ("manifest.json", "rejected.json")}


def test_build_writes_library_eval_and_manifest(built: tuple[Path, Roots, dict]) -> None:
    cache, _, manifest = built
    on_disk = json.loads((cache / "manifest.json").read_text())
    assert on_disk["sources"]["tuxpaint"]["counts"] == manifest["sources"]["tuxpaint"]["counts"]
    tux = manifest["sources"]["tuxpaint"]["counts"]
    assert tux["train"] + tux["val"] == 8  # the opaque stamp is rejected
    gnome = manifest["sources"]["gnome"]["counts"]
    assert gnome["train"] + gnome["val"] == 4
    assert manifest["sources"]["emoji3d"]["counts"] == {"train": 0, "val": 0}
    assert manifest["eval"]["counts"] == EVAL
    assert manifest["sources"]["tuxpaint"]["licence"]
    for png in (cache / "fg").rglob("*.png"):
        rgba = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert rgba.shape[2] == 4 and rgba[..., 3].min() == 0 and rgba[..., 3].max() == 255
    for jpg in (cache / "bg").rglob("*.jpg"):
        assert max(cv2.imread(str(jpg)).shape[:2]) <= 1024


def test_build_is_idempotent(built: tuple[Path, Roots, dict]) -> None:
    cache, roots, first = built
    before = _files(cache)
    again = build(cache, seed=0, roots=roots, eval_counts=EVAL)
    assert _files(cache) == before  # nothing rewritten
    assert again["last_run"]["foregrounds"]["new"] == 0
    assert again["last_run"]["backgrounds"]["new"] == 0
    assert again["sources"] == first["sources"]


def test_segmentation_items(built: tuple[Path, Roots, dict]) -> None:
    cache, roots, _ = built
    ds = SegmentationDataset("train", size=96, cache=cache, seed=3, length=12, ccp_root=roots.ccp)
    assert len(ds) == 12
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, 96, 96) and item["image"].dtype == torch.float32
        assert item["mask"].shape == (1, 96, 96) and item["mask"].dtype == torch.float32
        assert 0.0 <= float(item["mask"].min()) and float(item["mask"].max()) <= 1.0
        assert torch.isfinite(item["image"]).all()
        assert -2.2 < float(item["image"].min()) and float(item["image"].max()) < 2.7  # normalised
    same = SegmentationDataset("train", size=96, cache=cache, seed=3, length=12, ccp_root=roots.ccp)
    for i in (0, 5):
        assert torch.equal(ds[i]["image"], same[i]["image"]) and torch.equal(
            ds[i]["mask"], same[i]["mask"]
        )
    same.set_epoch(1)
    assert not torch.equal(ds[0]["image"], same[0]["image"])


def test_matting_items_satisfy_composition(built: tuple[Path, Roots, dict]) -> None:
    cache, _, _ = built
    ds = MattingDataset("train", crop=96, cache=cache, seed=1, length=6)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    boundary = 0
    for i in range(len(ds)):
        item = ds[i]
        for key, channels in (("image", 3), ("alpha", 1), ("fg", 3), ("bg", 3)):
            assert item[key].shape == (channels, 96, 96) and item[key].dtype == torch.float32
        for key in ("alpha", "fg", "bg"):
            assert 0.0 <= float(item[key].min()) and float(item[key].max()) <= 1.0
        a = item["alpha"]
        rgb = item["image"] * std + mean
        assert torch.allclose(rgb, a * item["fg"] + (1 - a) * item["bg"], atol=1e-5)
        boundary += int(((a > 0.05) & (a < 0.95)).any())
    assert boundary >= len(ds) // 2  # crops sit on the object's edge most of the time
    again = MattingDataset("train", crop=96, cache=cache, seed=1, length=6)
    assert torch.equal(ds[2]["alpha"], again[2]["alpha"]) and torch.equal(
        ds[2]["fg"], again[2]["fg"]
    )


def test_evaluation_sets(built: tuple[Path, Roots, dict]) -> None:
    cache, roots, _ = built
    sets = evaluation_sets(cache, ccp_root=roots.ccp)
    assert {"studio", "cluttered"} <= set(sets)
    assert len(sets["studio"]) == EVAL["studio"]
    if (roots.ccp / "image").is_dir():
        assert len(sets["ccp_val"]) == 100
    for name, items in sets.items():
        item_id, rgb, alpha = items[0]
        assert isinstance(item_id, str)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        assert alpha.dtype == np.float32 and alpha.shape == rgb.shape[:2]
        assert 0.0 <= alpha.min() and alpha.max() <= 1.0 and alpha.max() > 0.5, name
    if "studio" in sets:
        assert max(sets["studio"][0][1].shape[:2]) == 640


def test_datasets_work_without_any_built_data(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    seg = SegmentationDataset("train", size=64, cache=tmp_path, length=3, ccp_root=missing)
    mat = MattingDataset("train", crop=64, cache=tmp_path, length=3)
    assert seg[0]["mask"].shape == (1, 64, 64)
    assert mat[0]["alpha"].shape == (1, 64, 64)
    assert evaluation_sets(tmp_path, ccp_root=missing, real_roots=(missing,)) == {}


def test_evaluate_reports_each_image_through_the_serving_pipeline(
        built: tuple[Path, Roots, dict], random_model_dir: Path) -> None:
    from model_export.evaluate import evaluate, format_report, worst_images

    cache, roots, _ = built
    sets = evaluation_sets(cache, ccp_root=roots.ccp)
    report = evaluate(random_model_dir, sets=("studio", "cluttered"), teacher=False, threads=1,
                      data=sets)
    for name in ("studio", "cluttered"):
        entry = report["sets"][name]
        assert entry["n"] == EVAL[name] == len(entry["images"])
        assert [image["id"] for image in entry["images"]] == [item[0] for item in sets[name]]
        for key in ("mask_iou", "mask_bf", "iou", "bf", "mad"):
            per_image = [image["ours"][key] for image in entry["images"]]
            assert all(0.0 <= v <= 1.0 for v in per_image), key
            assert entry["ours"][key] == pytest.approx(np.mean(per_image)), key
        for image in entry["images"]:
            # Two counts of the same confusion: IoU = (1 - lost) / (1 + kept) on a non-empty GT.
            ours = image["ours"]
            assert ours["mask_iou"] == pytest.approx(
                (1 - ours["mask_lost_object"]) / (1 + ours["mask_kept_background"]), abs=1e-6)
    assert "background kept / object lost: studio " in format_report(report)
    listing = worst_images(report, 1).splitlines()
    assert len(listing) == 1 + 2  # header, one image per set
    lowest = min(report["sets"]["studio"]["images"], key=lambda r: r["ours"]["mask_iou"])
    assert lowest["id"] in listing[1]


def test_evaluate_splits_each_images_loss_by_trimap_region(
        built: tuple[Path, Roots, dict], random_model_dir: Path) -> None:
    from model_export.evaluate import evaluate, format_report

    cache, roots, _ = built
    report = evaluate(random_model_dir, sets=("studio",), teacher=False, threads=1,
                      data=evaluation_sets(cache, ccp_root=roots.ccp), regions=True)
    entry = report["sets"]["studio"]
    for image in entry["images"]:
        assert sum(image["iou_loss"].values()) == pytest.approx(1.0 - image["ours"]["iou"])
    assert entry["iou_loss_sum"]["band"] == pytest.approx(
        sum(image["iou_loss"]["band"] for image in entry["images"]))
    assert "by trimap region" in format_report(report)


def test_evaluate_at_another_segmenter_size_leaves_the_model_folder_alone(
        built: tuple[Path, Roots, dict], random_model_dir: Path, tmp_path: Path) -> None:
    """`--input-size` works through the pipeline's own setting: no copy of the folder is made,
    and the folder evaluated is left as it was (a leftover clean-up once deleted it)."""
    import shutil

    from model_export.evaluate import evaluate

    cache, roots, _ = built
    models = shutil.copytree(random_model_dir, tmp_path / "models")
    before = sorted(p.name for p in models.iterdir())
    report = evaluate(models, sets=("studio",), teacher=False, threads=1, input_size=128,
                      data=evaluation_sets(cache, ccp_root=roots.ccp))
    assert report["input_size"] == 128 and report["sets"]["studio"]["n"] == EVAL["studio"]
    assert sorted(p.name for p in models.iterdir()) == before


def test_bundle_packs_a_small_cache_that_trains(
    built: tuple[Path, Roots, dict], tmp_path: Path
) -> None:
    """The GPU bundle: downscaled to the sides asked, held-out sets left out on request, and
    still a data cache the segmentation dataset reads."""
    from model_export.train.bundle import pack

    cache, _, _ = built
    ccp = tmp_path / "ccp"
    rng = np.random.default_rng(1)
    for k in range(3):
        (ccp / "image").mkdir(parents=True, exist_ok=True)
        (ccp / "alpha").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(ccp / "image" / f"{k:04d}.jpg"), rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
        )
        person = np.zeros((300, 200), np.uint8)
        cv2.rectangle(person, (50, 40), (150, 280), 255, -1)
        cv2.imwrite(str(ccp / "alpha" / f"{k:04d}.png"), person)

    out = pack(tmp_path / "bundle", cache=cache, ccp_root=ccp, max_mb=5, ccp_side=120,
               bg_side=100, fg_side=48, with_eval=False)
    assert not (out / "cache" / "eval").exists()
    long_sides = {kind: [max(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape[:2]) for p in files]
                  for kind, files in {"ccp": (out / "ccp_fashion" / "image").glob("*.jpg"),
                                      "bg": (out / "cache" / "bg").rglob("*.jpg"),
                                      "fg": (out / "cache" / "fg" / "train").glob("*.png")}.items()}
    assert len(long_sides["ccp"]) == 3 and max(long_sides["ccp"]) == 120
    assert long_sides["bg"] and max(long_sides["bg"]) <= 100
    assert long_sides["fg"] and max(long_sides["fg"]) <= 48

    ds = SegmentationDataset("train", size=64, cache=out / "cache", length=4,
                             ccp_root=out / "ccp_fashion", ccp_share=0.5)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["mask"].shape == (1, 64, 64)

    with_eval = pack(tmp_path / "bundle_eval", cache=cache, ccp_root=ccp, max_mb=5)
    assert sorted(p.name for p in (with_eval / "cache" / "eval").iterdir()) == sorted(EVAL)
    pack(out, cache=cache, ccp_root=ccp, max_mb=5)  # an earlier bundle is rebuilt in place
    with pytest.raises(SystemExit, match="more than a bundle"):
        pack(ccp, cache=cache, ccp_root=ccp, max_mb=5)  # anything else is left alone
    assert len(list((ccp / "image").iterdir())) == 3
