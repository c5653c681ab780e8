"""`cutout serve` (the HTTP service) and `cutout remove IN... -o OUT_DIR` (local batch cutouts
with the same pipeline; resumable: files already done are skipped)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from .config import Settings
from .errors import ModelFolderError, ServiceError
from .pipeline import CutoutOptions, Pipeline

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif"}
OUTPUT_SUFFIXES = {"png": ".png", "webp": ".webp", "jpeg": ".jpg", "zip": ".zip"}


def _settings(args: argparse.Namespace, names: Iterable[str]) -> Settings:
    """Settings from the environment, with the flags that were given on top."""
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return Settings(**overrides)


# ---- serve -------------------------------------------------------------------------------------
SERVE_FLAGS = ("host", "port", "workers", "threads", "model_dir", "queue_size",
               "request_timeout_s", "max_inference_side", "matting", "tile_size", "tile_margin",
               "tile_batch", "matting_side", "tile_placement", "segmenter_side", "segmenter_path",
               "segmenter_input_size", "log_level")


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .main import create_app

    settings = _settings(args, SERVE_FLAGS)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=int(settings.request_timeout_s) + 5)
    return 0


# ---- remove ------------------------------------------------------------------------------------
REMOVE_FLAGS = ("model_dir", "threads", "max_inference_side", "matting", "tile_size",
                "tile_margin", "tile_batch", "matting_side", "tile_placement", "segmenter_side",
                "segmenter_path", "segmenter_input_size")


def find_inputs(paths: list[Path]) -> Iterator[tuple[Path, Path]]:
    """(file, path relative to its root) for files and for images found in folders."""
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                    yield file, file.relative_to(path)
        elif path.is_file():
            yield path, Path(path.name)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")


def remove(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    try:
        options = CutoutOptions(output=args.output, format=args.format, bg_color=args.bg_color,
                                crop=args.crop, crop_margin=args.crop_margin)
    except ValidationError as exc:
        print(f"cutout remove: invalid options: {exc}", file=sys.stderr)
        return 2
    settings = _settings(args, REMOVE_FLAGS)
    suffix = OUTPUT_SUFFIXES[options.format]
    jobs = [(src, args.out / rel.with_suffix(suffix)) for src, rel in find_inputs(args.inputs)]
    todo = [(src, dst) for src, dst in jobs
            if args.overwrite or not (dst.is_file() and dst.stat().st_size > 0)]
    skipped = len(jobs) - len(todo)
    if not todo:
        print(f"nothing to do: {len(jobs)} file(s), all done already in {args.out}")
        return 0
    pipeline = Pipeline(settings.pipeline_config())
    failed = 0
    with tqdm(total=len(jobs), initial=skipped, unit="img", desc="cutout",
              disable=args.quiet) as progress:
        for src, dst in todo:
            try:
                result = pipeline.run(src.read_bytes(), options)
                _write_atomically(dst, result.body)
            except (ServiceError, OSError) as exc:
                failed += 1
                message = exc.message if isinstance(exc, ServiceError) else str(exc)
                progress.write(f"failed: {src}: {message}", file=sys.stderr)
            progress.update(1)
    written = len(todo) - failed
    print(f"{written} written, {skipped} skipped (already done), {failed} failed -> {args.out}")
    return 1 if failed else 0


def _write_atomically(path: Path, data: bytes) -> None:
    """A crash never leaves a partial file that a resumed run would take as done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# ---- entry point -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cutout", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def model_flags(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--model-dir", dest="model_dir", type=Path,
                         help="folder with spec.json and the ONNX graphs (default: models)")
        sub.add_argument("--threads", type=int, help="ONNX Runtime threads (per worker)")
        sub.add_argument("--max-inference-side", dest="max_inference_side", type=int)
        sub.add_argument("--matting", choices=["auto", "band", "dense"])
        sub.add_argument("--matting-side", dest="matting_side", type=int,
                         help="long side at which the band is matted (0: inference size)")
        sub.add_argument("--tile-placement", dest="tile_placement", choices=["band", "grid"])
        sub.add_argument("--tile-size", dest="tile_size", type=int)
        sub.add_argument("--tile-margin", dest="tile_margin", type=int)
        sub.add_argument("--tile-batch", dest="tile_batch", type=int)
        sub.add_argument("--segmenter-side", dest="segmenter_side", type=int,
                         help="long side the bundled segmenter works at (default: spec.json's)")
        sub.add_argument("--segmenter", dest="segmenter_path", type=Path,
                         help="another ONNX segmenter (see CUTOUT_SEGMENTER_* settings)")
        sub.add_argument("--segmenter-input-size", dest="segmenter_input_size", type=int)

    serve_parser = commands.add_parser("serve", help="run the HTTP service")
    serve_parser.add_argument("--host")
    serve_parser.add_argument("--port", type=int)
    serve_parser.add_argument("--workers", type=int, help="worker processes")
    serve_parser.add_argument("--queue-size", dest="queue_size", type=int)
    serve_parser.add_argument("--timeout", dest="request_timeout_s", type=float,
                              help="request deadline in seconds")
    serve_parser.add_argument("--log-level", dest="log_level",
                              choices=["debug", "info", "warning", "error"])
    model_flags(serve_parser)
    serve_parser.set_defaults(handler=serve)

    remove_parser = commands.add_parser("remove", help="cut out local files or folders")
    remove_parser.add_argument("inputs", nargs="+", type=Path, metavar="IN",
                               help="image files or folders (searched recursively)")
    remove_parser.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    remove_parser.add_argument("--output", default="rgba",
                               choices=["rgba", "alpha", "mask", "trimap"])
    remove_parser.add_argument("--format", default="png", choices=["png", "webp", "jpeg", "zip"])
    remove_parser.add_argument("--bg-color", dest="bg_color")
    remove_parser.add_argument("--crop", action="store_true")
    remove_parser.add_argument("--crop-margin", dest="crop_margin", default="0")
    remove_parser.add_argument("--overwrite", action="store_true",
                               help="redo files whose output exists")
    remove_parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    model_flags(remove_parser)
    remove_parser.set_defaults(handler=remove)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ModelFolderError, FileNotFoundError) as exc:
        print(f"cutout {args.command}: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"cutout {args.command}: invalid settings: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
