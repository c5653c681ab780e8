"""The real-photo builder on a Roboflow-style YOLOv8-seg export committed to a real bare git
repo."""
from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_export.data.real import real_items
from model_export.data.real_build import (
    MANIFEST_COLUMNS,
    build_all,
    build_real,
    roboflow_stem,
    val_ids,
)

W, H = 640, 480  # not square and over 512: the builder must keep the aspect and scale by 0.8
SQUARE = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]  # normalised corners
TRIANGLE = [(0.1, 0.9), (0.4, 0.9), (0.1, 0.6)]


def _photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _smooth_photo(salt_and_pepper: float) -> bytes:
    """A smooth gradient, with the share of pixels Roboflow's noise augmentation turns black or
    white."""
    rng = np.random.default_rng(7)
    x, y = np.meshgrid(np.linspace(40, 200, W), np.linspace(60, 180, H))
    pixels = np.dstack([x, y, np.full((H, W), 120.0)]).astype(np.uint8)
    hit = rng.random((H, W)) < salt_and_pepper
    pixels[hit] = rng.choice([0, 255], size=(int(hit.sum()), 1))
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _line(cls: int, points: list[tuple[float, float]]) -> str:
    return " ".join([str(cls), *(f"{v:.4f}" for p in points for v in p)])


def _coco_export(folder: Path) -> None:
    """A COCO-segmentation export: 'pot' in train and valid (valid kept), 'rle' with an RLE mask
    (no polygons: dropped), 'tray' with a polygon in absolute pixels."""
    square = [v * s for x, y in SQUARE for v, s in ((x, W), (y, H))]
    splits = {"train": [("pot", [square]), ("rle", {"size": [H, W], "counts": "abc"})],
              "valid": [("pot", [square]), ("tray", [[10, 10, 330, 10, 330, 250, 10, 250]])]}
    for split, entries in splits.items():
        images, annotations = [], []
        for k, (stem, seg) in enumerate(entries):
            rf_hash = {"train": "aa", "valid": "bb"}[split]  # Roboflow hashes are hex
            name = f"{stem}_jpg.rf.{rf_hash}{k}.jpg"
            (folder / split).mkdir(parents=True, exist_ok=True)
            (folder / split / name).write_bytes(_photo(100 + k + len(split)))
            images.append({"id": k, "file_name": name, "width": W, "height": H})
            annotations.append({"id": k, "image_id": k, "category_id": 1, "segmentation": seg,
                                "bbox": [W / 4, H / 4, W / 2, H / 2]})
        coco = {"images": images, "annotations": annotations,
                "categories": [{"id": 0, "name": "objects"}, {"id": 1, "name": "pot"}]}
        (folder / split / "_annotations.coco.json").write_text(json.dumps(coco))


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """A bare mirror under mirrors/owner+name/repo, as the fetch tool lays it out, and its
    commit."""
    root = tmp_path_factory.mktemp("real")
    work = root / "work"
    ds = work / "export.v1i.yolov8"
    files = {
        # two augmented train copies of 'kettle' and its unaugmented valid copy: only valid is kept
        "train/images/kettle_jpg.rf.aaaa1111.jpg": (_photo(1), [_line(0, TRIANGLE)]),
        "train/images/kettle_jpg.rf.bbbb2222.jpg": (_photo(2), [_line(0, TRIANGLE)]),
        "valid/images/kettle_jpg.rf.cccc3333.jpg": (_photo(3), [_line(0, SQUARE)]),
        # two instances, one of a class not kept ('shadow')
        "train/images/dog_png.rf.dddd4444.jpg": (_photo(4), [_line(0, SQUARE), _line(1, TRIANGLE)]),
        # only augmented train copies of 'mug': the one without salt-and-pepper noise is kept
        "train/images/mug_jpg.rf.a1.jpg": (_smooth_photo(0.05), [_line(0, SQUARE)]),
        "train/images/mug_jpg.rf.a2.jpg": (_smooth_photo(0.0), [_line(0, SQUARE)]),
        "train/images/mug_jpg.rf.a3.jpg": (_smooth_photo(0.02), [_line(0, SQUARE)]),
        # nothing labelled: dropped as an empty mask
        "test/images/empty_jpeg.rf.eeee5555.jpg": (_photo(5), []),
    }
    for k in range(10):  # enough photos for the val split's minimum of 5
        files[f"train/images/cup{k}_jpg.rf.ffff{k:04d}.jpg"] = (_photo(10 + k), [_line(0, SQUARE)])
    for rel, (jpeg, lines) in files.items():
        image = ds / rel
        label = ds / rel.replace("/images/", "/labels/").replace(".jpg", ".txt")
        image.parent.mkdir(parents=True, exist_ok=True)
        label.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(jpeg)
        label.write_text("\n".join(lines) + ("\n" if lines else ""))
    (ds / "data.yaml").write_text("names: ['thing', 'shadow']\nnc: 2\n")
    # A Darknet export: labels beside the images, class names one per line in _darknet.labels
    dark = work / "export.darknet" / "train"
    dark.mkdir(parents=True)
    (dark / "_darknet.labels").write_text("curtain\npot\n")
    for k, classes in enumerate([(1,), (0, 1), (0,)]):  # a pot; a pot and a curtain; a curtain
        (dark / f"room{k}_jpg.rf.{k:04d}.jpg").write_bytes(_photo(30 + k))
        (dark / f"room{k}_jpg.rf.{k:04d}.txt").write_text(
            "".join(f"{c} 0.5 0.5 {0.5 - 0.2 * c:.1f} 0.5\n" for c in classes))
    _coco_export(work / "export.v2i.coco-segmentation")
    (ds / "README.dataset.txt").write_text(
        "# export > v1\nProvided by a Roboflow user\nLicense: CC BY 4.0\n"
    )
    _git(work, "init", "-q")
    _git(work, "add", ".")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "export")
    commit = _git(work, "rev-parse", "HEAD").strip()
    mirrors = root / "mirrors"
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work), str(mirrors / "someone+export" / "repo")],
        check=True,
    )
    sources = root / "sources.json"
    common = {
        "repo": "someone/export",
        "commit": commit,
        "licence": "CC BY 4.0",
        "subject": "test objects",
    }
    sources.write_text(
        json.dumps(
            {
                "sources": [
                    {
                        "name": "things",
                        "format": "yolov8-seg",
                        "images": ["export.v1i.yolov8/*/images/*.jpg"],
                        "data_yaml": "export.v1i.yolov8/data.yaml",
                        "classes": ["thing"],
                        **common,
                    },
                    {
                        "name": "cocothings",
                        "format": "coco-seg",
                        "images": ["export.v2i.coco-segmentation/*/*.json"],
                        **common,
                    },
                    {  # the ten cups again, as a source judged on and never trained on
                        "name": "heldcups",
                        "format": "yolov8-seg",
                        "images": ["export.v1i.yolov8/train/images/cup*.jpg"],
                        "data_yaml": "export.v1i.yolov8/data.yaml",
                        "classes": ["thing"],
                        "held_out": True,
                        **common,
                    },
                    {
                        "name": "boxed",
                        "format": "yolo-boxes",
                        "images": ["export.v1i.yolov8/valid/images/*.jpg"],
                        **common,
                    },
                    {
                        "name": "darkboxed",
                        "format": "yolo-boxes",
                        "images": ["export.darknet/train/*.jpg"],
                        "label_dirs": [["", ""]],
                        "data_yaml": "export.darknet/train/_darknet.labels",
                        "classes": ["pot"],
                        **common,
                    },
                    {
                        "name": "cocoboxed",
                        "format": "coco-boxes",
                        "images": ["export.v2i.coco-segmentation/valid/*.json"],
                        "box_kind": "part",
                        **common,
                    },
                ]
            }
        )
    )
    return mirrors, commit, sources


@pytest.fixture(scope="module")
def built(export: tuple[Path, str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    mirrors, _, sources = export
    out = tmp_path_factory.mktemp("out")
    build_real(mirrors, out, sources)
    return out


def _manifest(out: Path, source: str = "things") -> list[dict[str, str]]:
    header, *rows = (out / "MANIFEST.tsv").read_text().splitlines()
    assert tuple(header.split("\t")) == MANIFEST_COLUMNS
    return [r for r in (dict(zip(MANIFEST_COLUMNS, line.split("\t"), strict=True)) for line in rows)
            if r["id"].startswith(f"{source}_")]


def _row(out: Path, stem: str, source: str = "things") -> dict[str, str]:
    return next(r for r in _manifest(out, source) if f"/{stem}_" in r["src_image_path"])


def _mask(out: Path, item: str) -> np.ndarray:
    return np.asarray(Image.open(out / "mask" / f"{item}.png"))


def test_roboflow_stem_strips_the_export_suffix() -> None:
    assert roboflow_stem("a/train/images/IMG_12_jpg.rf.0a1b2c.jpg") == "IMG_12"
    assert roboflow_stem("a/b/plain.jpg") == "plain"


def test_one_pair_per_source_image_and_the_unaugmented_copy_is_kept(
    built: Path, export: tuple
) -> None:
    rows = _manifest(built)
    stems = sorted(roboflow_stem(r["src_image_path"]) for r in rows)
    assert stems == sorted(
        ["kettle", "dog", "mug", *(f"cup{k}" for k in range(10))]
    )  # 'empty' dropped
    kettle = _row(built, "kettle")
    assert kettle["src_image_path"].endswith("valid/images/kettle_jpg.rf.cccc3333.jpg")
    assert kettle["src_mask_path"].endswith("valid/labels/kettle_jpg.rf.cccc3333.txt")
    assert kettle["commit"] == export[1] and kettle["source_repo"] == "someone/export"
    assert kettle["licence"] == "CC BY 4.0"


def test_the_least_noisy_train_copy_is_kept(built: Path) -> None:
    assert _row(built, "mug")["src_image_path"].endswith("mug_jpg.rf.a2.jpg")


def test_masks_are_binary_resized_and_where_the_polygons_are(built: Path) -> None:
    for stem, inside, outside in (
        ("kettle", (0.5, 0.5), (0.15, 0.8)),  # the valid copy's square
        ("dog", (0.5, 0.5), (0.15, 0.8)),  # the 'shadow' triangle is left out
    ):
        item = _row(built, stem)["id"]
        image = Image.open(built / "image" / f"{item}.jpg")
        mask = np.asarray(Image.open(built / "mask" / f"{item}.png"))
        assert image.size == (512, 384) and mask.shape == (384, 512)
        assert set(np.unique(mask)) == {0, 255}
        assert mask[int(inside[1] * 384), int(inside[0] * 512)] == 255
        assert mask[int(outside[1] * 384), int(outside[0] * 512)] == 0
        cover = (mask > 0).mean()
        assert 0.24 < cover < 0.26  # the square spans half of each side


def test_coco_exports_keep_polygons_and_drop_instances_without_them(built: Path) -> None:
    rows = _manifest(built, "cocothings")
    assert sorted(roboflow_stem(r["src_image_path"]) for r in rows) == [
        "pot",
        "tray",
    ]  # 'rle' dropped
    pot = _row(built, "pot", "cocothings")
    assert "/valid/" in pot["src_image_path"] and pot["src_mask_path"].endswith(
        "valid/_annotations.coco.json"
    )
    assert 0.24 < (_mask(built, pot["id"]) > 0).mean() < 0.26
    tray = _mask(built, _row(built, "tray", "cocothings")["id"])  # pixels (10..330, 10..250) at 0.8
    assert tray[100, 130] == 255 and tray[250, 300] == 0


def test_boxes_sources_write_boxes_not_masks(built: Path) -> None:
    assert _manifest(built, "boxed") == []
    header, *rows = (built / "boxes.tsv").read_text().splitlines()
    row = dict(
        zip(header.split("\t"), next(r for r in rows if "kettle" in r).split("\t"), strict=True)
    )
    x0, y0, x1, y1 = map(float, row["boxes_xyxy"].split(","))  # the square, scaled 640 -> 512
    assert (x0, y0, x1, y1) == pytest.approx((128, 96, 384, 288), abs=1)
    assert Image.open(built / "boxes_image" / f"{row['id']}.jpg").size == (512, 384)
    assert row["box_kind"] == "object"  # the default: boxes bound whole subjects


def _box_rows(out: Path, source: str) -> list[dict[str, str]]:
    header, *lines = (out / "boxes.tsv").read_text().splitlines()
    rows = [dict(zip(header.split("\t"), line.split("\t"), strict=True)) for line in lines]
    return [r for r in rows if r["id"].startswith(f"{source}_")]


def test_coco_boxes_sources_read_the_bbox_field(built: Path) -> None:
    assert _manifest(built, "cocoboxed") == []
    rows = _box_rows(built, "cocoboxed")
    assert sorted(roboflow_stem(r["src_image_path"]) for r in rows) == ["pot", "tray"]
    assert {r["box_kind"] for r in rows} == {"part"}
    x0, y0, x1, y1 = map(float, rows[0]["boxes_xyxy"].split(","))  # bbox (160, 120, 320, 240)
    assert (x0, y0, x1, y1) == pytest.approx((128, 96, 384, 288), abs=1)  # scaled 640 -> 512


def test_darknet_exports_name_their_classes_in_a_labels_file(built: Path) -> None:
    rows = {roboflow_stem(r["src_image_path"]): r for r in _box_rows(built, "darkboxed")}
    assert sorted(rows) == ["room0", "room1"]  # room2 holds a curtain only: no box kept
    for row in rows.values():  # only the pot's box (0.3 wide), scaled 640 -> 512
        x0, y0, x1, y1 = map(float, row["boxes_xyxy"].split(","))
        assert (x0, y0, x1, y1) == pytest.approx((179.2, 96, 332.8, 288), abs=1)


def test_val_split_takes_the_minimum_and_does_not_depend_on_order(built: Path) -> None:
    ids = [r["id"] for r in _manifest(built)]
    val = [i for i in (built / "val.txt").read_text().split() if i.startswith("things_")]
    assert len(val) == 5 and set(val) <= set(ids)  # 10 % of 13 rounds to 1, the minimum is 5
    assert val == val_ids(ids) == val_ids(ids[::-1])
    many = [f"x_{k:04d}" for k in range(200)]
    assert len(val_ids(many)) == 20  # 10 % once over the minimum


def test_a_held_out_source_is_all_validation(built: Path) -> None:
    ids = sorted(r["id"] for r in _manifest(built, "heldcups"))
    assert len(ids) == 10
    val = [i for i in (built / "val.txt").read_text().split() if i.startswith("heldcups_")]
    assert val == ids  # every id, not the 10 % (at least 5) of the other sources
    assert real_items("train", (built,), sources=("heldcups",)) == []
    assert [i.id for i in real_items("val", (built,), sources=("heldcups",))] == ids


def test_only_builds_the_named_sources(export: tuple, tmp_path: Path) -> None:
    mirrors, _, sources = export
    out = tmp_path / "held"
    build_real(mirrors, out, sources, only=("heldcups",))
    header, *rows = (out / "MANIFEST.tsv").read_text().splitlines()
    ids = sorted(row.split("\t")[0] for row in rows)
    assert len(ids) == 10 and all(i.startswith("heldcups_") for i in ids)
    assert (out / "val.txt").read_text().split() == ids
    assert sorted(p.stem for p in (out / "image").iterdir()) == ids
    with pytest.raises(ValueError, match="no source named"):
        build_real(mirrors, out, sources, only=("nosuch",))


def test_the_full_build_keeps_held_out_sources_out_of_the_training_folder(
    export: tuple, tmp_path: Path
) -> None:
    mirrors, _, sources = export
    train_out, held_out = tmp_path / "real", tmp_path / "heldout"
    build_all(mirrors, train_out, held_out, sources)
    assert real_items("train", (train_out, held_out), sources=("heldcups",)) == []
    assert real_items("val", (train_out,), sources=("heldcups",)) == []  # not in best.pt's choice
    assert len(real_items("val", (held_out,), sources=("heldcups",))) == 10
    assert real_items("val", (held_out,), sources=("things",)) == []
    assert len(real_items("train", (train_out,), sources=("things",))) > 0


def test_video_frames_are_thinned_and_wrong_masks_dropped(export: tuple, tmp_path: Path) -> None:
    mirrors, _, sources = export
    entry = json.loads(sources.read_text())
    cups = next(s for s in entry["sources"] if s["name"] == "heldcups")
    entry["sources"].append({**cups, "name": "frames", "keep_every": 3, "wrong_masks": [4, 7]})
    thinned = tmp_path / "thinned.json"
    thinned.write_text(json.dumps(entry))
    (report,) = build_real(mirrors, tmp_path / "out", thinned, only=("frames",))
    ids = [r["id"] for r in _manifest(tmp_path / "out", "frames")]
    assert ids == ["frames_0001", "frames_0010"]  # 1, 4, 7, 10 kept by keep_every; 4, 7 wrong
    assert report.dropped == {"thinned out (keep_every)": 6, "mask seen to be wrong": 2}


def test_rebuild_is_idempotent(built: Path, export: tuple) -> None:
    mirrors, _, sources = export
    before = {
        p: p.stat().st_mtime_ns for p in built.rglob("*.*") if p.parent.name in ("image", "mask")
    }
    manifest = (built / "MANIFEST.tsv").read_text()
    build_real(mirrors, built, sources)
    after = {
        p: p.stat().st_mtime_ns for p in built.rglob("*.*") if p.parent.name in ("image", "mask")
    }
    assert before == after and (built / "MANIFEST.tsv").read_text() == manifest


def test_a_missing_commit_is_refused(export: tuple, tmp_path: Path) -> None:
    mirrors, _, sources = export
    entry = json.loads(sources.read_text())
    entry["sources"][0]["commit"] = "0" * 40
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(entry))
    with pytest.raises(LookupError, match="not in"):
        build_real(mirrors, tmp_path / "out", bad)
