"""python -m model_export.contact_sheet: real photos and their cutouts on a checkerboard.

Rows: input, our cutout (RGBA over a checkerboard), the ISNet peer's cutout beside it (when
its weights are installed: `python -m bench.peers`), our trimap from the ED layer. Columns:
real photos first (validation photos of each real-photo source, held-out background photos of
animals and places that have no mask at all, CCP validation photos), then composites. Images
are run through the service's own inference (`Pipeline.infer`) and composition, so the sheet
shows what a user gets, failures included.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .data.ccp import ccp_split, load_ccp

CELL = 220


def checkerboard(width: int, height: int, square: int = 12) -> Image.Image:
    yy, xx = np.mgrid[0:height, 0:width]
    board = np.where(((yy // square) + (xx // square)) % 2 == 0, 235, 190).astype(np.uint8)
    return Image.fromarray(np.stack([board] * 3, axis=-1))


def _fit(image: Image.Image) -> Image.Image:
    image = image.copy()
    image.thumbnail((CELL, CELL))
    return image


def _cutout_and_trimap(pipeline, rgb: np.ndarray) -> tuple[Image.Image, Image.Image]:
    """The served RGBA cutout and trimap of one image, from one pass of `Pipeline.infer`."""
    from service.pipeline import CutoutOptions, compose

    found = pipeline.infer(rgb)
    rgba = compose.compose(rgb, found.matte, CutoutOptions(output="rgba"),
                           estimate_foreground=pipeline.config.foreground_estimation).pixels
    return Image.fromarray(rgba, "RGBA"), Image.fromarray(found.trimap_matte())


def _on_board(rgba: Image.Image) -> Image.Image:
    cutout = _fit(rgba)
    board = checkerboard(*cutout.size)
    board.paste(cutout, (0, 0), cutout)
    return board


def make_sheet(model_dir: Path, images: list[tuple[str, np.ndarray]], out: Path) -> Path:
    from service.pipeline import Pipeline, PipelineConfig

    from .evaluate import load_teacher

    pipeline = Pipeline(PipelineConfig(model_dir=model_dir, threads=2))
    peer = load_teacher()
    rows = ("input", "cutout", "ISNet peer", "trimap") if peer else ("input", "cutout", "trimap")
    sheet = Image.new("RGB", (CELL * len(images) + 70, CELL * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, label in enumerate(rows):
        draw.text((4, r * CELL + CELL // 2), label, fill="black")
    for c, (name, rgb) in enumerate(images):
        x = 70 + c * CELL
        cutout, trimap = _cutout_and_trimap(pipeline, rgb)
        cells = [_fit(Image.fromarray(rgb)), _on_board(cutout)]
        if peer:
            alpha = (np.clip(peer.predict(rgb), 0, 1) * 255 + 0.5).astype(np.uint8)
            cells.append(_on_board(Image.fromarray(np.dstack([rgb, alpha]), "RGBA")))
        cells.append(_fit(trimap.convert("RGB")))
        for r, cell in enumerate(cells):
            sheet.paste(cell, (x + (CELL - cell.width) // 2, r * CELL + (CELL - cell.height) // 2))
        draw.text((x + 2, 2), name, fill="red")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


# Held-out background photos (the build's val split, never trained on) of subjects a user would
# cut out: photos with no mask at all, so only the eye judges them.
UNMASKED = ("gcompris__erase-goat", "gcompris__erase-gibbon", "gcompris__erase-spoonbills",
            "gcompris__explore_world_animals-scarlet_macaw")


def unmasked_photos(names: tuple[str, ...] = UNMASKED) -> list[tuple[str, np.ndarray]]:
    from .data import DEFAULT_CACHE
    from .data.library import read_rgb

    folder = DEFAULT_CACHE / "bg" / "val"
    return [(f"photo {name.split('-', 1)[-1]}", read_rgb(folder / f"{name}.jpg"))
            for name in names if (folder / f"{name}.jpg").exists()]


def default_images(count: int = 2, also: tuple[str, ...] = (), per_source: int = 2
                   ) -> list[tuple[str, np.ndarray]]:
    """Real photos first: `per_source` validation photos of each real-photo source, the
    held-out unmasked photos, `count` CCP validation photos; then one composite of each style,
    then the images named in `also` (ids from any evaluation set, e.g. the ones
    `evaluate --worst` lists)."""
    try:
        from .data import evaluation_sets

        sets = evaluation_sets()
    except Exception as exc:  # noqa: BLE001 - composites are optional extras on the sheet
        print(f"contact sheet: no held-out composites ({exc}); CCP photos only")
        sets = {}
    images = []
    for name, items in sets.items():
        if name.startswith("real_"):
            images += [(f"{name[5:]} {item_id.rsplit('_', 1)[-1]}", rgb)
                       for item_id, rgb, _ in items[:per_source]]
    images += unmasked_photos()
    images += [(f"ccp {i}", load_ccp(i)[0]) for i in ccp_split("val")[:count]]
    for name in ("studio", "cluttered"):
        images += [(f"{name} {item_id}", rgb) for item_id, rgb, _ in sets.get(name, [])[:1]]
    by_id = {item_id: (name, rgb) for name, items in sets.items() for item_id, rgb, _ in items}
    for item_id in also:
        if item_id not in by_id:
            raise SystemExit(f"contact sheet: no evaluation image {item_id!r}")
        name, rgb = by_id[item_id]
        images.append((f"{name} {item_id}", rgb))
    return images


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=Path("docs/contact_sheet.png"))
    parser.add_argument("--count", type=int, default=2, help="CCP validation photos")
    parser.add_argument("--per-source", type=int, default=2,
                        help="validation photos of each real-photo source")
    parser.add_argument("--also", action="append", default=[], metavar="ID",
                        help="add this evaluation image (repeatable), e.g. a failure that "
                        "`python -m model_export.evaluate --worst 8` lists")
    args = parser.parse_args(argv)
    images = default_images(args.count, tuple(args.also), args.per_source)
    print(f"wrote {make_sheet(args.models, images, args.out)}")


if __name__ == "__main__":
    main()
