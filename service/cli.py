"""`cutout serve` (the HTTP service) and `cutout remove IN... -o OUT_DIR` (local batch cutouts
with the same pipeline, in one or more processes; resumable: files already done are skipped)."""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError

from .config import Settings
from .errors import ModelFolderError, ServiceError
from .pipeline import CutoutOptions, Pipeline, PipelineConfig
from .settings_errors import explain

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif"}
OUTPUT_SUFFIXES = {"png": ".png", "webp": ".webp", "jpeg": ".jpg", "zip": ".zip"}


class BadSettings(ValueError):
    """A setting or flag out of its rules, said in one line (settings_errors.explain)."""


def _settings(args: argparse.Namespace, names: Iterable[str]) -> Settings:
    """Settings from the environment, with the flags that were given on top."""
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        return Settings(**overrides)
    except (ValidationError, SettingsError) as exc:
        flags = {name: flag for name, flag in getattr(args, "flag_names", {}).items()
                 if name in overrides}
        raise BadSettings(explain(exc, flags)) from None


# ---- serve -------------------------------------------------------------------------------------
SERVE_FLAGS = ("host", "port", "workers", "threads", "model_dir", "queue_size",
               "request_timeout_s", "max_inference_side", "matting_side", "segmenter_spec",
               "log_level")


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
REMOVE_FLAGS = ("model_dir", "workers", "threads", "max_inference_side", "matting_side",
                "segmenter_spec")


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
    if args.engine == "ray":
        return _remove_with_ray(args, options, settings)
    urls = [str(p) for p in [*args.inputs, args.out] if isinstance(p, str)]
    if urls:
        print(f"cutout remove: {urls[0]} is a URL: only --engine ray reads and writes URLs",
              file=sys.stderr)
        return 2
    if "workers" not in settings.model_fields_set:  # neither --workers nor CUTOUT_WORKERS
        settings = settings.model_copy(update={"workers": default_remove_workers()})
    suffix = OUTPUT_SUFFIXES[options.format]
    jobs = [(src, args.out / rel.with_suffix(suffix)) for src, rel in find_inputs(args.inputs)]
    todo = [(src, dst) for src, dst in jobs
            if args.overwrite or not (dst.is_file() and dst.stat().st_size > 0)]
    skipped = len(jobs) - len(todo)
    if not todo:
        print(f"nothing to do: {len(jobs)} file(s), all done already in {args.out}")
        return 0
    workers = min(settings.workers, len(todo))
    if workers != settings.workers:  # ONNX Runtime threads are split between those that run
        settings = settings.model_copy(update={"workers": workers})
    failed, processes = 0, set()
    with tqdm(total=len(jobs), initial=skipped, unit="img", desc="cutout",
              disable=args.quiet) as progress:
        for src, error, pid in _cut_all(todo, settings, options, workers):
            processes.add(pid)
            if error is not None:
                failed += 1
                progress.write(f"failed: {src}: {error}", file=sys.stderr)
            progress.update(1)
    written = len(todo) - failed
    print(f"{written} written, {skipped} skipped (already done), {failed} failed -> {args.out} "
          f"({len(processes - {None})} process(es))")
    return 1 if failed else 0


def _remove_with_ray(args: argparse.Namespace, options: CutoutOptions,
                     settings: Settings) -> int:
    """The same cutouts on a Ray cluster (service/batch_ray.py, the `batch` extra)."""
    try:
        from . import batch_ray
    except ImportError as exc:
        print(f"cutout remove: --engine ray needs Ray: pip install 'cutout[batch]' ({exc})",
              file=sys.stderr)
        return 2
    return batch_ray.remove(
        [str(p) for p in args.inputs], str(args.out), options, settings.pipeline_config(),
        suffix=OUTPUT_SUFFIXES[options.format], image_suffixes=IMAGE_SUFFIXES,
        overwrite=args.overwrite, quiet=args.quiet, address=args.ray_address,
        threads=settings.threads or 2, actors=args.ray_actors)


def _path_or_url(text: str) -> Path | str:
    """A local path, or a URL kept as written (Path would fold its '//')."""
    return text if "://" in text else Path(text)


def default_remove_workers() -> int:
    """One process per two cores: decoding and encoding are serial, so several processes keep
    the cores busier than one with all the threads; each keeps two ONNX Runtime threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // 2)


Job = tuple[Path, Path]


def _cut_all(todo: list[Job], settings: Settings, options: CutoutOptions,
             workers: int) -> Iterator[tuple[Path, str | None, int | None]]:
    """(source, error or None, process id) per job, in the order they finish."""
    config = settings.pipeline_config()
    if workers == 1:  # in this process: no start-up cost
        _start_worker(config, options)
        for src, dst in todo:
            yield src, *_cut_one(src, dst)
        return
    context = multiprocessing.get_context(settings.worker_start_method)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(config, options)) as executor:
        futures = {executor.submit(_cut_one, src, dst): src for src, dst in todo}
        for future in as_completed(futures):
            try:
                yield futures[future], *future.result()
            except Exception as exc:  # noqa: BLE001 - a worker died (e.g. killed for memory): report, go on
                yield futures[future], f"worker process failed: {exc!r}", None


_worker: tuple[Pipeline, CutoutOptions] | None = None  # one per process, set by _start_worker


def _start_worker(config: PipelineConfig, options: CutoutOptions) -> None:
    global _worker
    _worker = (Pipeline(config), options)


def _cut_one(src: Path, dst: Path) -> tuple[str | None, int]:
    """Cut out one file and write it: (the error in words or None, this process's id)."""
    assert _worker is not None, "_start_worker runs first"
    pipeline, options = _worker
    try:
        result = pipeline.run(src.read_bytes(), options)
        _write_atomically(dst, result.body)
    except (ServiceError, OSError) as exc:
        return (exc.message if isinstance(exc, ServiceError) else str(exc)), os.getpid()
    return None, os.getpid()


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
                         help="folder with spec.json and the ONNX graphs (default: the "
                         "bundled models)")
        sub.add_argument("--threads", type=int, help="ONNX Runtime threads (per worker)")
        sub.add_argument("--max-inference-side", dest="max_inference_side", type=int)
        sub.add_argument("--matting-side", dest="matting_side", type=int,
                         help="long side at which the band is matted (0: inference size)")
        sub.add_argument("--segmenter-spec", dest="segmenter_spec", type=Path,
                         help="spec file (JSON) of another ONNX segmenter (README, "
                         "CUTOUT_SEGMENTER_SPEC)")

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
    remove_parser.add_argument("inputs", nargs="+", type=_path_or_url, metavar="IN",
                               help="image files or folders (searched recursively); with "
                               "--engine ray also URLs pyarrow opens (s3://, gs://, ...)")
    remove_parser.add_argument("-o", "--out", type=_path_or_url, required=True,
                               help="output folder (or URL, with --engine ray)")
    remove_parser.add_argument("--output", default="rgba",
                               choices=["rgba", "alpha", "mask", "trimap"])
    remove_parser.add_argument("--format", default="png", choices=["png", "webp", "jpeg", "zip"])
    remove_parser.add_argument("--bg-color", dest="bg_color")
    remove_parser.add_argument("--crop", action="store_true")
    remove_parser.add_argument("--crop-margin", dest="crop_margin", default="0")
    remove_parser.add_argument("--overwrite", action="store_true",
                               help="redo files whose output exists")
    remove_parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    remove_parser.add_argument("--workers", type=int, help="processes cutting out files "
                               "(default: CUTOUT_WORKERS, else one per two CPU cores)")
    remove_parser.add_argument("--engine", choices=["local", "ray"], default="local",
                               help="local: a process pool here; ray: Ray Data over an actor "
                               "pool (pip install 'cutout[batch]')")
    remove_parser.add_argument("--ray-address", dest="ray_address", help="a Ray cluster to join "
                               "(default: RAY_ADDRESS, else a local one)")
    remove_parser.add_argument("--ray-actors", dest="ray_actors", type=int, help="actors, each "
                               "with one pipeline (default: the cluster's CPUs / threads)")
    model_flags(remove_parser)
    remove_parser.set_defaults(handler=remove)
    return parser


def flag_names(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """Setting name -> the `cutout COMMAND` flag that sets it."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action.option_strings[-1]
            for action in subparsers.choices[command]._actions
            if action.option_strings and action.dest != "help"}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.flag_names = flag_names(parser, args.command)
    try:
        return args.handler(args)
    except (ModelFolderError, FileNotFoundError, BadSettings) as exc:
        print(f"cutout {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
