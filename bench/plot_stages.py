"""Per-stage latency plot (PNG, drawn with Pillow: no matplotlib in the serving environment).

    python -m bench.plot_stages RUN.json [RUN2.json ...] -o docs/latency_stages.png

Each JSON is what `python -m bench.latency --json` writes (the stages of its 1-client run,
label "ours ..." plus the ISNet peer's model-only p50 as its own bar when present) or what
`python -m bench.sweep --json` writes (one bar per config). One horizontal bar per row, one
coloured segment per stage (mean ms), the total at the end.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

STAGE_ORDER = ("queue", "decode", "resize", "segment", "trimap", "matting", "refine",
               "upscale", "compose", "encode", "other", "model")
COLOURS = {"queue": "#9e9e9e", "decode": "#8d6e63", "resize": "#bdbdbd", "segment": "#1e88e5",
           "trimap": "#26a69a", "matting": "#e53935", "refine": "#fb8c00", "upscale": "#fdd835",
           "compose": "#8e24aa", "encode": "#43a047", "other": "#cfd8dc", "model": "#5d4037"}


def rows_from(path: Path, peer: bool = True) -> list[tuple[str, dict[str, float]]]:
    data = json.loads(path.read_text())
    rows = []
    if isinstance(data, list):  # bench.sweep
        for entry in data:
            rows.append((entry["config"], dict(entry["stages_ms"])))
        return rows
    one = data["ours"][0]
    stages = {k: v * 1000 for k, v in one["stages_mean_s"].items() if k != "total"}
    wall = one["mean_s"] * 1000
    stages["other"] = max(wall - sum(stages.values()), 0.0)  # HTTP, transfer, scheduling
    rows.append((data.get("label", "ours, HTTP end to end, 1 client"), stages))
    if peer and data.get("peer"):
        rows.append(("ISNet peer, model only", {"model": data["peer"]["p50_s"] * 1000}))
    return rows


def _font(size: int):
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def draw(rows: list[tuple[str, dict[str, float]]], title: str, out: Path) -> None:
    font, small = _font(15), _font(12)
    label_w, bar_w, row_h, top = 360, 760, 38, 60
    legend_h = 50
    height = top + row_h * len(rows) + 40 + legend_h
    image = Image.new("RGB", (label_w + bar_w + 90, height), "white")
    pen = ImageDraw.Draw(image)
    pen.text((10, 12), title, fill="black", font=_font(17))
    longest = max(sum(s.values()) for _, s in rows) or 1.0
    scale = bar_w / longest
    axis_y = top + row_h * len(rows) + 4
    step = next(s for s in (50, 100, 200, 250, 500, 1000, 2000, 5000) if longest / s <= 10)
    for tick in range(0, int(longest) + 1, step):
        x = label_w + tick * scale
        pen.line([(x, top - 6), (x, axis_y)], fill="#eeeeee")
        pen.text((x - 10, axis_y + 4), f"{tick}", fill="#555555", font=small)
    pen.text((label_w + bar_w - 40, axis_y + 20), "ms", fill="#555555", font=small)
    for index, (label, stages) in enumerate(rows):
        y = top + index * row_h
        pen.text((10, y + 8), label[:48], fill="black", font=font)
        x = float(label_w)
        for name in sorted(stages, key=lambda n: STAGE_ORDER.index(n) if n in STAGE_ORDER else 99):
            width = stages[name] * scale
            pen.rectangle([x, y + 4, x + width, y + row_h - 8], fill=COLOURS.get(name, "#607d8b"))
            x += width
        pen.text((x + 6, y + 8), f"{sum(stages.values()):.0f}", fill="black", font=font)
    used = [n for n in STAGE_ORDER if any(n in s for _, s in rows)]
    x, y = 10, height - legend_h + 10
    for name in used:
        pen.rectangle([x, y, x + 14, y + 14], fill=COLOURS[name])
        pen.text((x + 18, y - 1), name, fill="black", font=small)
        x += 26 + int(pen.textlength(name, font=small))
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/latency_stages.png"))
    parser.add_argument("--no-peer", action="store_true", help="leave out the ISNet bar")
    parser.add_argument("--title", default="cutout: mean latency per stage at 1500 px (ms)")
    args = parser.parse_args(argv)
    rows = [row for path in args.runs for row in rows_from(path, not args.no_peer)]
    draw(rows, args.title, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
