"""Real photographs with hand-drawn masks, from Roboflow exports committed to public git repos.

`python -m model_export.data real --mirrors DIR` reads each source of `real_sources.json` from
its bare git mirror (DIR/owner+name/..., as the search tool's fetch lays it out) at the pinned
commit, rasterises the union of the kept instance polygons into a binary mask, keeps one copy
per Roboflow source image, and writes `.cache/real/`:

- image/<source>_<id>.jpg (q90, long side <= 512) and mask/<source>_<id>.png (0/255, same size)
- MANIFEST.tsv (same columns as ../shared/data/real_masks/MANIFEST.tsv) and val.txt: 10 % of
  each source, except a source marked "held_out", whose every id goes to val.txt (never trained
  on: real photographs of kinds the training sources lack, to judge the models out of domain)
- boxes.tsv + boxes_image/ for "yolo-boxes" and "coco-boxes" sources (no mask: the ISNet teacher
  labels them, data/teacher.py)

Rebuilding is idempotent: files already written are kept, stale ones removed.
"""
from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import logging
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import yaml
from PIL import Image
from typing_extensions import Self

from .real import CACHE_ROOT, HELDOUT_ROOT

log = logging.getLogger(__name__)

DEFAULT_SOURCES = Path(__file__).with_name("real_sources.json")
MAX_SIDE = 512
JPEG_QUALITY = 90
MIN_COVER, MAX_COVER = 0.005, 0.97  # masks outside these fractions are not a cut-out subject
VAL_FRACTION, VAL_MIN = 0.10, 5
VAL_SEED = "real-val-0"
FORMATS = ("yolov8-seg", "coco-seg", "yolo-boxes", "coco-boxes")
BOX_FORMATS = ("yolo-boxes", "coco-boxes")
MANIFEST_COLUMNS = ("id", "source_repo", "commit", "src_image_path", "src_mask_path", "gt_kind",
                    "licence", "subject")
BOX_COLUMNS = ("id", "source_repo", "commit", "src_image_path", "src_label_path", "boxes_xyxy",
               "box_kind", "licence", "subject")
GT_KIND = {
    "yolov8-seg": "binary (union of hand-drawn instance polygons, Roboflow YOLOv8-seg export)",
    "coco-seg": "binary (union of hand-drawn instance polygons, Roboflow COCO-seg export)",
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Roboflow names every exported copy <stem>_<ext>.rf.<hash>.<ext>; augmented copies share the stem.
_RF_NAME = re.compile(r"^(?P<stem>.+?)_(?:jpe?g|png|webp|bmp|JPE?G|PNG)\.rf\.[0-9a-fA-F]+$")
_SPLIT_RANK = {"valid": 0, "val": 0, "test": 1}  # unaugmented splits first; train (augmented) last


@dataclass(frozen=True)
class Source:
    name: str
    repo: str
    commit: str
    licence: str
    subject: str
    format: str
    images: tuple[str, ...]
    classes: tuple[str, ...] | None = None  # None: every class
    data_yaml: str | None = None  # class names for yolo formats: data.yaml or _darknet.labels
    label_dirs: tuple[tuple[str, str], ...] = (
        ("images", "labels"),
    )  # ("", ""): label beside image
    notes: str = ""
    held_out: bool = False  # every id to val.txt: judged on, never trained on
    keep_every: int = 1  # keep one stem in this many: video frames (near-copies), big exports
    wrong_masks: tuple[int, ...] = ()  # stem numbers whose mask was seen to be wrong: dropped
    box_kind: str = "object"  # boxes sources: "object" boxes bound whole subjects, "part" a part

    @classmethod
    def from_json(cls, entry: dict) -> Source:
        if entry["format"] not in FORMATS:
            raise ValueError(
                f"source {entry['name']!r}: format {entry['format']!r} is not one of {FORMATS}"
            )
        if not re.fullmatch(r"[a-z0-9]+", entry["name"]):
            raise ValueError(f"source name {entry['name']!r} must be [a-z0-9]+")
        if entry.get("box_kind", "object") not in ("object", "part"):
            raise ValueError(f"source {entry['name']!r}: box_kind must be 'object' or 'part'")
        if not re.fullmatch(r"[0-9a-f]{40}", entry["commit"]):
            raise ValueError(f"source {entry['name']!r}: commit must be 40 hex digits")
        classes = entry.get("classes", "all")
        return cls(
            name=entry["name"],
            repo=entry["repo"],
            commit=entry["commit"],
            licence=entry["licence"],
            subject=entry["subject"],
            format=entry["format"],
            images=tuple(entry["images"]),
            classes=None if classes == "all" else tuple(classes),
            data_yaml=entry.get("data_yaml"),
            label_dirs=tuple(tuple(p) for p in entry.get("label_dirs", [["images", "labels"]])),
            notes=entry.get("notes", ""),
            held_out=bool(entry.get("held_out", False)),
            keep_every=int(entry.get("keep_every", 1)),
            wrong_masks=tuple(int(n) for n in entry.get("wrong_masks", ())),
            box_kind=entry.get("box_kind", "object"),
        )


def load_sources(path: Path = DEFAULT_SOURCES) -> list[Source]:
    sources = [Source.from_json(e) for e in json.loads(path.read_text())["sources"]]
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate source names in {path}")
    return sources


class GitTree:
    """Read-only view of one commit of a bare repository (one `git cat-file --batch` process)."""

    def __init__(self, git_dir: Path, commit: str) -> None:
        self.git_dir, self.commit = git_dir, commit
        probe = subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "-t", commit],
                               capture_output=True, text=True, check=False)
        if probe.stdout.strip() != "commit":
            raise LookupError(f"commit {commit} is not in {git_dir}")
        out = subprocess.run(
            ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "-z", "--name-only", commit],
            capture_output=True,
            check=True,
        ).stdout
        self.paths = [p.decode() for p in out.split(b"\0") if p]
        self._set = set(self.paths)
        self.by_name: dict[str, list[str]] = {}
        for path in self.paths:
            self.by_name.setdefault(PurePosixPath(path).name, []).append(path)
        self._proc = subprocess.Popen(["git", "--git-dir", str(git_dir), "cat-file", "--batch"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def __contains__(self, path: str) -> bool:
        return path in self._set

    def read(self, path: str) -> bytes:
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(f"{self.commit}:{path}\n".encode())
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().decode().split()
        if len(header) != 3 or header[1] != "blob":
            raise FileNotFoundError(f"{path} at {self.commit}: {' '.join(header)}")
        data = self._proc.stdout.read(int(header[2]))
        self._proc.stdout.read(1)  # the newline after each object
        return data

    def glob(self, pattern: str) -> list[str]:
        return sorted(p for p in self.paths if fnmatch.fnmatchcase(p, pattern))

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_git_dir(mirrors: Path, repo: str) -> Path:
    """The bare git dir under mirrors/owner+name/ (fetch puts it one or two levels down)."""
    base = mirrors / repo.replace("/", "+")
    if not base.is_dir():
        raise FileNotFoundError(f"no mirror of {repo} under {mirrors} (fetch github:{repo} first)")
    for candidate in [base, *sorted(p for p in base.rglob("*") if p.is_dir())]:
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    raise FileNotFoundError(f"no bare git directory inside {base}")


@dataclass
class Item:
    """One source image chosen to represent its Roboflow stem, with its polygons (pixel coords)."""
    stem: str
    image_path: str
    label_path: str
    polygons: list[np.ndarray] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    unusable: str = ""  # why the labels cannot make a complete mask


def roboflow_stem(path: str) -> str:
    name = PurePosixPath(path).stem
    m = _RF_NAME.match(name)
    return m.group("stem") if m else name


def _split_rank(path: str) -> int:
    parts = PurePosixPath(path).parts
    return min((_SPLIT_RANK.get(p, 2) for p in parts), default=2)


def pick_copies(paths: list[str], noise: Callable[[str], float] | None = None) -> dict[str, str]:
    """One path per Roboflow stem: a valid/test copy (unaugmented) when there is one; among train
    copies only, the least noisy (Roboflow's salt-and-pepper and blur augmentations), else the
    first."""
    groups: dict[str, list[str]] = {}
    for path in sorted(paths, key=lambda p: (_split_rank(p), p)):
        groups.setdefault(roboflow_stem(path), []).append(path)
    chosen = {}
    for stem, group in groups.items():
        best = [p for p in group if _split_rank(p) == _split_rank(group[0])]
        chosen[stem] = min(best, key=noise) if noise is not None and len(best) > 1 else best[0]
    return chosen


IMPULSE_JUMP = 64  # grey levels away from the 3x3 median: surely a salt or pepper pixel
IMPULSE_REPAIR = 0.002  # above this share of such pixels a photo has Roboflow's noise on it
IMPULSE_FIX_JUMP = 32  # once it has, fainter specks (JPEG-softened) are replaced too


def _jumps(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.absdiff(grey, cv2.medianBlur(grey, 3))


def impulse_fraction(data: bytes) -> float:
    """Share of pixels far from their 3x3 median: Roboflow's salt-and-pepper noise shows up here."""
    return float(np.mean(_jumps(_decode(data)) > IMPULSE_JUMP))


def repair_impulses(image: np.ndarray) -> np.ndarray:
    """Salt-and-pepper pixels replaced by their 3x3 median; photos without the noise are
    untouched."""
    jumps = _jumps(image)
    if np.mean(jumps > IMPULSE_JUMP) <= IMPULSE_REPAIR:
        return image
    noisy = jumps > IMPULSE_FIX_JUMP
    fixed = image.copy()
    fixed[noisy] = cv2.medianBlur(image, 3)[noisy]
    return fixed


def _class_names(tree: GitTree, source: Source) -> list[str] | None:
    if source.data_yaml is None:
        return None
    if source.data_yaml.endswith(".labels"):  # Darknet exports: one class name per line
        return [n.strip() for n in tree.read(source.data_yaml).decode().splitlines() if n.strip()]
    names = yaml.safe_load(tree.read(source.data_yaml))["names"]
    return [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)


def _kept_ids(names: list[str] | None, source: Source) -> set[int] | None:
    if source.classes is None:
        return None
    if names is None:
        raise ValueError(
            f"source {source.name!r} keeps classes {source.classes} but names no data_yaml"
        )
    missing = set(source.classes) - set(names)
    if missing:
        raise ValueError(
            f"source {source.name!r}: classes {sorted(missing)} not in {source.data_yaml}"
        )
    return {i for i, n in enumerate(names) if n in source.classes}


def _label_path(image_path: str, label_dirs: tuple[tuple[str, str], ...]) -> str:
    if ("", "") in label_dirs:  # Darknet exports keep each label beside its image
        return str(PurePosixPath(image_path).with_suffix(".txt"))
    parts = list(PurePosixPath(image_path).with_suffix(".txt").parts)
    for k in range(len(parts) - 2, -1, -1):  # the folder nearest the file
        for images, labels in label_dirs:
            if parts[k] == images:
                parts[k] = labels
                return str(PurePosixPath(*parts))
    raise ValueError(
        f"{image_path}: no folder named {[i for i, _ in label_dirs]} to find its label in"
    )


def _yolo_items(tree: GitTree, source: Source, sizes: dict[str, tuple[int, int]]) -> Iterator[Item]:
    kept = _kept_ids(_class_names(tree, source), source)
    images = [
        p
        for pattern in source.images
        for p in tree.glob(pattern)
        if p.lower().endswith(IMAGE_SUFFIXES)
    ]
    for stem, path in sorted(pick_copies(images, lambda p: impulse_fraction(tree.read(p))).items()):
        item = Item(stem, path, _label_path(path, source.label_dirs))
        if item.label_path not in tree:
            item.unusable = "no label file"
            yield item
            continue
        w, h = sizes.setdefault(path, _image_size(tree.read(path)))
        for line in tree.read(item.label_path).decode().splitlines():
            values = line.split()
            if not values:
                continue
            cls, coords = int(float(values[0])), np.asarray(values[1:], np.float64)
            if kept is not None and cls not in kept:
                continue
            if len(coords) == 4:
                if source.format == "yolov8-seg":
                    item.unusable = "a box among the polygons"
                    break
                cx, cy, bw, bh = coords
                item.boxes.append(
                    ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
                )
            elif len(coords) >= 6 and len(coords) % 2 == 0:
                polygon = coords.reshape(-1, 2) * (w, h)
                item.polygons.append(polygon)
                (x0, y0), (x1, y1) = polygon.min(axis=0), polygon.max(axis=0)
                item.boxes.append((x0, y0, x1, y1))  # what a boxes source records of a polygon
            else:
                item.unusable = f"malformed line with {len(coords)} coordinates"
                break
        yield item


def _coco_items(tree: GitTree, source: Source, sizes: dict[str, tuple[int, int]]) -> Iterator[Item]:
    records: list[tuple[str, str, dict, list[dict], dict[int, str]]] = []
    for pattern in source.images:
        for ann_path in tree.glob(pattern):
            coco = json.loads(tree.read(ann_path))
            cats = {c["id"]: c["name"] for c in coco["categories"]}
            by_image: dict[int, list[dict]] = {}
            for ann in coco["annotations"]:
                by_image.setdefault(ann["image_id"], []).append(ann)
            folder = PurePosixPath(ann_path).parent
            for img in coco["images"]:
                path = _beside(tree, folder, img["file_name"])
                records.append((path, ann_path, img, by_image.get(img["id"], []), cats))
    by_path = {r[0]: r for r in records}
    for stem, path in sorted(
        pick_copies(list(by_path), lambda p: impulse_fraction(tree.read(p))).items()
    ):
        _, ann_path, img, anns, cats = by_path[path]
        item = Item(stem, path, ann_path)
        if path not in tree:
            item.unusable = "image not in the repository"
            yield item
            continue
        sizes[path] = (int(img["width"]), int(img["height"]))
        for ann in anns:
            if source.classes is not None and cats.get(ann["category_id"]) not in source.classes:
                continue
            if source.format == "coco-boxes":
                x, y, bw, bh = ann["bbox"]
                item.boxes.append((x, y, x + bw, y + bh))
                continue
            seg = ann.get("segmentation")
            if not isinstance(seg, list) or not seg:
                item.unusable = "an instance without polygons (RLE or box only)"
                break
            item.polygons.extend(
                np.asarray(p, np.float64).reshape(-1, 2) for p in seg if len(p) >= 6
            )
        yield item


def _beside(tree: GitTree, folder: PurePosixPath, name: str) -> str:
    """The image a COCO file names: beside it, or in a split folder under it (some exports move
    them)."""
    here = str(folder / name)
    if here in tree:
        return here
    below = [p for p in tree.by_name.get(name, []) if PurePosixPath(p).parent.parent == folder]
    return below[0] if len(below) == 1 else here


def _image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def rasterise(polygons: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """Union of the polygons (pixel coordinates) as a 0/255 mask."""
    mask = np.zeros((height, width), np.uint8)
    if polygons:
        cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polygons], 255)
    return mask


def _fit(image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, float]:
    h, w = image.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    if scale == 1.0:
        return image, mask, scale
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if mask is not None:
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    return image, mask, scale


def val_ids(ids: list[str]) -> list[str]:
    """10 % of one source's ids (at least 5), chosen by a seeded hash of each id: adding sources or
    photos elsewhere never moves an id between splits."""
    if not ids:
        return []
    count = min(len(ids), max(VAL_MIN, round(VAL_FRACTION * len(ids))))
    ranked = sorted(ids, key=lambda i: hashlib.sha256(f"{VAL_SEED}:{i}".encode()).hexdigest())
    return sorted(ranked[:count])


@dataclass
class SourceReport:
    name: str
    format: str
    stems: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, why: str) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1


def _build_source(tree: GitTree, source: Source, out: Path, rows: list[dict], box_rows: list[dict],
                  previous: dict[str, str]) -> SourceReport:
    report = SourceReport(source.name, source.format)
    sizes: dict[str, tuple[int, int]] = {}
    items = list(
        _coco_items(tree, source, sizes)
        if source.format.startswith("coco-")
        else _yolo_items(tree, source, sizes)
    )
    report.stems = len(items)
    # Numbered over every stem so ids stay put when one drops.
    for number, item in enumerate(items, 1):
        item_id = f"{source.name}_{number:04d}"
        if item.unusable:
            report.drop(item.unusable)
            continue
        if (number - 1) % source.keep_every:
            report.drop("thinned out (keep_every)")
            continue
        if number in source.wrong_masks:
            report.drop("mask seen to be wrong")
            continue
        if source.format in BOX_FORMATS:
            if _write_boxes(tree, source, item, item_id, out, box_rows):
                report.kept += 1
            else:
                report.drop("no boxes")
            continue
        # files already written are reused only when they came from the same commit and file
        same = previous.get(item_id) == f"{source.commit}:{item.image_path}"
        why = _write_pair(tree, item, item_id, out, sizes, reuse=same)
        if why:
            report.drop(why)
            continue
        report.kept += 1
        rows.append(
            {
                "id": item_id,
                "source_repo": source.repo,
                "commit": source.commit,
                "src_image_path": item.image_path,
                "src_mask_path": item.label_path,
                "gt_kind": GT_KIND[source.format],
                "licence": source.licence,
                "subject": source.subject,
            }
        )
    return report


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _write_pair(
    tree: GitTree,
    item: Item,
    item_id: str,
    out: Path,
    sizes: dict[str, tuple[int, int]],
    reuse: bool,
) -> str:
    image_file, mask_file = out / "image" / f"{item_id}.jpg", out / "mask" / f"{item_id}.png"
    w, h = sizes.get(item.image_path) or _image_size(tree.read(item.image_path))
    mask = rasterise(item.polygons, w, h)
    cover = float(np.count_nonzero(mask)) / mask.size
    if cover == 0:
        return "empty mask"
    if not MIN_COVER <= cover <= MAX_COVER:
        return f"mask covers {'< 0.5' if cover < MIN_COVER else '> 97'} % of the image"
    if reuse and image_file.exists() and mask_file.exists():
        return ""
    image = repair_impulses(_decode(tree.read(item.image_path)))
    if image.shape[:2] != (h, w):
        return "image size differs from its annotation"
    image, mask, _ = _fit(image, mask)
    Image.fromarray(image).save(image_file, quality=JPEG_QUALITY)
    Image.fromarray(mask).save(mask_file)
    return ""


def _write_boxes(
    tree: GitTree, source: Source, item: Item, item_id: str, out: Path, box_rows: list[dict]
) -> bool:
    if not item.boxes:
        return False
    image = _decode(tree.read(item.image_path))
    image, _, scale = _fit(image, None)
    image_file = out / "boxes_image" / f"{item_id}.jpg"
    if not image_file.exists():
        Image.fromarray(image).save(image_file, quality=JPEG_QUALITY)
    boxes = ";".join(",".join(f"{v * scale:.1f}" for v in box) for box in item.boxes)
    box_rows.append(
        {
            "id": item_id,
            "source_repo": source.repo,
            "commit": source.commit,
            "src_image_path": item.image_path,
            "src_label_path": item.label_path,
            "boxes_xyxy": boxes,
            "box_kind": source.box_kind,
            "licence": source.licence,
            "subject": source.subject,
        }
    )
    return True


def write_tsv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    lines = ["\t".join(columns)] + [
        "\t".join(str(r[c]).replace("\t", " ") for c in columns) for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")


def _previous_sources(manifest: Path) -> dict[str, str]:
    """id -> 'commit:source image' of the last build, to know which written files still hold."""
    if not manifest.exists():
        return {}
    header, *lines = manifest.read_text().splitlines()
    cols = header.split("\t")
    rows = [dict(zip(cols, line.split("\t"), strict=True)) for line in lines]
    return {r["id"]: f"{r['commit']}:{r['src_image_path']}" for r in rows}


def _remove_stale(folder: Path, keep: set[str]) -> int:
    stale = [p for p in folder.iterdir() if p.stem not in keep]
    for p in stale:
        p.unlink()
    return len(stale)


def build_real(
    mirrors: Path,
    out: Path = CACHE_ROOT,
    sources_file: Path = DEFAULT_SOURCES,
    only: tuple[str, ...] | None = None,
) -> list[SourceReport]:
    """Build `out` from every source of `sources_file`, or only the sources named in `only` (the
    others' files in `out` are then removed as stale, so build a subset into its own folder)."""
    sources = load_sources(sources_file)
    if only is not None:
        unknown = set(only) - {s.name for s in sources}
        if unknown:
            raise ValueError(f"no source named {sorted(unknown)} in {sources_file}")
        sources = [s for s in sources if s.name in only]
    for sub in ("image", "mask"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    if any(s.format in BOX_FORMATS for s in sources):
        (out / "boxes_image").mkdir(exist_ok=True)
    rows: list[dict] = []
    box_rows: list[dict] = []
    reports = []
    previous = _previous_sources(out / "MANIFEST.tsv")
    for source in sources:
        with GitTree(find_git_dir(mirrors, source.repo), source.commit) as tree:
            report = _build_source(tree, source, out, rows, box_rows, previous)
        log.info(
            "%s: %d stems -> %d kept, dropped %s",
            source.name,
            report.stems,
            report.kept,
            report.dropped,
        )
        reports.append(report)
    pair_ids = {r["id"] for r in rows}
    _remove_stale(out / "image", pair_ids)
    _remove_stale(out / "mask", pair_ids)
    if (out / "boxes_image").is_dir():
        _remove_stale(out / "boxes_image", {r["id"] for r in box_rows})
    write_tsv(out / "MANIFEST.tsv", MANIFEST_COLUMNS, rows)
    if box_rows:
        write_tsv(out / "boxes.tsv", BOX_COLUMNS, box_rows)
    elif (out / "boxes.tsv").exists():
        (out / "boxes.tsv").unlink()
    val: list[str] = []
    for source in sources:
        ids = [r["id"] for r in rows if r["id"].startswith(f"{source.name}_")]
        val += sorted(ids) if source.held_out else val_ids(ids)
    (out / "val.txt").write_text("".join(f"{i}\n" for i in val))
    return reports


def build_all(mirrors: Path, out: Path = CACHE_ROOT, heldout_out: Path = HELDOUT_ROOT,
              sources_file: Path = DEFAULT_SOURCES) -> list[SourceReport]:
    """Every source: the training sources into `out`, the held-out ones into `heldout_out`, a
    folder training never reads (data/real.py's EVAL_ROOTS has it, DEFAULT_ROOTS not)."""
    sources = load_sources(sources_file)
    reports: list[SourceReport] = []
    for folder, held_out in ((out, False), (heldout_out, True)):
        names = tuple(s.name for s in sources if s.held_out == held_out)
        if names:
            reports += build_real(mirrors, folder, sources_file, only=names)
    return reports
