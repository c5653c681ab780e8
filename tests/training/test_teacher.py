"""The ISNet teacher's gate (which of its masks may stand as labels) and the folder it writes,
on real files: boxes.tsv and photos as `data real` writes them, the teacher's soft masks as its
cache holds them (the peer itself is not installed in CI)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_export.data.real import load_real, real_items
from model_export.data.real_build import BOX_COLUMNS, write_tsv
from model_export.data.teacher import build_teacher, judge, prob_path

H, W = 200, 300
FACE = (130.0, 30.0, 170.0, 80.0)  # a "part" box: the face of the person below


def _person() -> np.ndarray:
    """A soft mask of a head and shoulders rising from the bottom edge: sure inside and out."""
    prob = np.zeros((H, W), np.float32)
    yy, xx = np.mgrid[0:H, 0:W]
    prob[((yy - 55) / 30) ** 2 + ((xx - 150) / 25) ** 2 <= 1] = 1.0  # head
    prob[100:, 90:210] = 1.0  # shoulders, cut by the frame
    return prob


def test_a_person_found_round_the_face_box_is_kept() -> None:
    verdict = judge(_person(), [FACE], "part")
    assert verdict.kept and verdict.why == ""
    assert verdict.box_cover > 0.3 and verdict.outside > 0.5  # "part" boxes allow the body


def test_the_same_mask_is_refused_for_an_object_box_it_overflows() -> None:
    verdict = judge(_person(), [FACE], "object")
    assert not verdict.kept and verdict.why == "mask reaches far outside the boxes"


def test_a_mask_that_misses_the_box_is_refused() -> None:
    elsewhere = (10.0, 10.0, 60.0, 60.0)
    verdict = judge(_person(), [elsewhere], "part")
    assert not verdict.kept and verdict.why == "mask misses the boxes"


def test_a_mask_of_the_whole_frame_is_refused() -> None:
    frame = np.zeros((H, W), np.float32)
    frame[2:-2, 2:-2] = 1.0  # under 97 % of the photo, yet round its border: the whole frame
    frame[0, :] = frame[-1, :] = frame[:, 0] = frame[:, -1] = 1.0
    frame[3:40, 3:40] = 0.0
    verdict = judge(frame, [FACE], "part")
    assert not verdict.kept and verdict.why in ("mask runs round the frame",
                                                "mask too small or too large")
    assert verdict.border > 0.5


def test_an_unsure_mask_is_refused() -> None:
    hazy = _person() * 0.7  # sure of nothing: every foreground pixel between 0.1 and 0.9
    hazy[hazy > 0] += 0.15
    verdict = judge(hazy, [FACE], "part")
    assert not verdict.kept and verdict.why == "teacher unsure" and verdict.unsure == 1.0


def _boxes_folder(root: Path) -> Path:
    """Two boxes-only photos as `data real` writes them: one the teacher gets right, one not."""
    folder = root / "boxes"
    (folder / "boxes_image").mkdir(parents=True)
    rows = []
    rng = np.random.default_rng(0)
    for item_id in ("people_0001", "people_0002"):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(
            folder / "boxes_image" / f"{item_id}.jpg")
        rows.append({"id": item_id, "source_repo": "someone/people", "commit": "0" * 40,
                     "src_image_path": f"train/images/{item_id}.jpg",
                     "src_label_path": f"train/labels/{item_id}.txt",
                     "boxes_xyxy": ",".join(str(v) for v in FACE), "box_kind": "part",
                     "licence": "CC BY 4.0", "subject": "people"})
    write_tsv(folder / "boxes.tsv", BOX_COLUMNS, rows)
    return folder


def test_build_writes_kept_photos_as_a_training_only_real_folder(tmp_path: Path) -> None:
    boxes, out = _boxes_folder(tmp_path), tmp_path / "teacher"
    (out / "prob").mkdir(parents=True)
    good = (_person() * 255).astype(np.uint8)
    bad = np.zeros((H, W), np.uint8)
    bad[150:190, 10:60] = 255  # a blob far from the face
    for item_id, prob in (("people_0001", good), ("people_0002", bad)):
        photo = boxes / "boxes_image" / f"{item_id}.jpg"
        Image.fromarray(prob).save(prob_path(out, item_id, photo))

    verdicts = build_teacher((boxes,), out, peer_path=tmp_path / "no-such-peer.onnx")

    assert [v.kept for v in verdicts] == [True, False]
    mask = np.asarray(Image.open(out / "mask" / "people_0001.png"))
    assert np.array_equal(mask, good)  # the teacher's probability, cut at 0.5 when read
    assert not (out / "mask" / "people_0002.png").exists()
    assert (out / "val.txt").read_text() == ""  # teacher masks never judge a model
    assert [i.id for i in real_items("train", (out,))] == ["people_0001"]
    assert real_items("train", (out,))[0].soft
    assert real_items("val", (out,)) == []
    report = (out / "teacher.tsv").read_text().splitlines()
    assert report[2].split("\t")[:3] == ["people_0002", "0", "mask misses the boxes"]


def test_a_photo_without_a_cached_mask_needs_the_peer(tmp_path: Path) -> None:
    boxes = _boxes_folder(tmp_path)
    with pytest.raises(FileNotFoundError):
        build_teacher((boxes,), tmp_path / "teacher", peer_path=tmp_path / "no-such-peer.onnx")


def test_a_cached_mask_does_not_stand_for_another_photo_under_the_same_id(tmp_path: Path) -> None:
    boxes, out = _boxes_folder(tmp_path), tmp_path / "teacher"
    (out / "prob").mkdir(parents=True)
    photos = [boxes / "boxes_image" / f"people_000{k}.jpg" for k in (1, 2)]
    for item_id, photo in zip(("people_0001", "people_0002"), photos, strict=True):
        Image.fromarray((_person() * 255).astype(np.uint8)).save(prob_path(out, item_id, photo))
    assert sum(v.kept for v in build_teacher((boxes,), out, peer_path=tmp_path / "none")) == 2
    Image.new("RGB", (W, H), "white").save(photos[0])  # a rebuilt source: new photo, same id
    with pytest.raises(FileNotFoundError):  # so the teacher must look again
        build_teacher((boxes,), out, peer_path=tmp_path / "none")


def test_only_the_named_sources_are_labelled(tmp_path: Path) -> None:
    boxes, out = _boxes_folder(tmp_path), tmp_path / "teacher"
    # no cached mask and no peer: a photo of a named source would need the teacher to run
    assert build_teacher((boxes,), out, peer_path=tmp_path / "none", sources=("dogs",)) == []
    assert real_items("train", (out,)) == []
    with pytest.raises(FileNotFoundError):
        build_teacher((boxes,), out, peer_path=tmp_path / "none", sources=("people",))


def test_a_teacher_mask_is_binary_unless_soft_targets_are_asked_for(tmp_path: Path) -> None:
    """Read plainly, a teacher's mask is cut at 0.5 as a drawn one is; with `soft`, its
    probabilities come back, the unsure ones between 0 and 1."""
    boxes, out = _boxes_folder(tmp_path), tmp_path / "teacher"
    (out / "prob").mkdir(parents=True)
    prob = _person() * 0.9
    prob[100:, 90:120] = 0.6  # a shoulder the teacher is unsure of
    for item_id in ("people_0001", "people_0002"):
        photo = boxes / "boxes_image" / f"{item_id}.jpg"
        Image.fromarray((prob * 255 + 0.5).astype(np.uint8)).save(prob_path(out, item_id, photo))
    build_teacher((boxes,), out, peer_path=tmp_path / "none")
    item = real_items("train", (out,))[0]

    _, hard = load_real(item)
    _, soft = load_real(item, soft=True)
    assert set(np.unique(hard)) == {0.0, 1.0}
    assert np.array_equal(hard, (soft > 0.5).astype(np.float32))
    assert np.allclose(soft[150, 100], 0.6, atol=0.003) and np.allclose(soft[150, 150], 0.9,
                                                                       atol=0.003)
