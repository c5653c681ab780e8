"""python -m model_export.data fetch|build|show|real|teacher"""
from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path

from .sources import DEFAULT_CACHE


def main(argv: list[str] | None = None) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log each skipped file")
    parser = argparse.ArgumentParser(prog="python -m model_export.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser(
        "fetch", parents=[common], help="install the registry sources (apt-get, npm)"
    )
    fetch.add_argument("--no-debian", action="store_true")
    fetch.add_argument("--no-npm", action="store_true")
    fetch.add_argument("--no-update", action="store_true", help="skip apt-get update")
    build = sub.add_parser(
        "build",
        parents=[common],
        help="build the cache (foreground library, backgrounds, eval sets)",
    )
    build.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--openclipart", type=int, default=None, help="how many SVGs to rasterise")
    build.add_argument("--studio", type=int, default=None, help="held-out studio composites")
    build.add_argument("--cluttered", type=int, default=None, help="held-out cluttered composites")
    build.add_argument("--force-eval", action="store_true", help="rewrite the held-out composites")
    show = sub.add_parser("show", parents=[common], help="print the manifest")
    show.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    real = sub.add_parser(
        "real",
        parents=[common],
        help="build .cache/real from the Roboflow exports named in real_sources.json",
    )
    real.add_argument("--mirrors", type=Path, required=True,
                      help="folder holding the fetched bare mirrors (owner+name/...)")
    real.add_argument("--out", type=Path, default=None, help="default .cache/real")
    real.add_argument(
        "--sources", type=Path, default=None, help="default model_export/data/real_sources.json"
    )
    real.add_argument("--only", nargs="+", default=None, metavar="NAME",
                      help="build only these sources (needs --out: the others' files are removed)")
    teacher = sub.add_parser(
        "teacher",
        parents=[common],
        help="label the boxes-only photos with the ISNet teacher into .cache/teacher",
    )
    teacher.add_argument("--boxes", type=Path, nargs="+", default=None,
                         help="folders holding boxes.tsv + boxes_image/ (default .cache/real)")
    teacher.add_argument("--out", type=Path, default=None, help="default .cache/teacher")
    teacher.add_argument("--threads", type=int, default=2)
    teacher.add_argument("--only", nargs="+", default=None, metavar="NAME",
                         help="label only these sources (the others are left out of --out)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )

    if args.command == "fetch":
        from .fetch import fetch as run_fetch

        run_fetch(debian=not args.no_debian, npm=not args.no_npm, update=not args.no_update)
    elif args.command == "build":
        from .build import EVAL_COUNTS, OPENCLIPART_COUNT
        from .build import build as run_build

        counts = {
            "studio": EVAL_COUNTS["studio"] if args.studio is None else args.studio,
            "cluttered": EVAL_COUNTS["cluttered"] if args.cluttered is None else args.cluttered,
        }
        manifest = run_build(
            args.cache,
            args.seed,
            openclipart_count=OPENCLIPART_COUNT if args.openclipart is None else args.openclipart,
            eval_counts=counts,
            force_eval=args.force_eval,
        )
        print(json.dumps(manifest, indent=2))
    elif args.command == "real":
        from .real import CACHE_ROOT
        from .real_build import BOX_FORMATS, DEFAULT_SOURCES, build_all, build_real

        sources = args.sources or DEFAULT_SOURCES
        if args.only and args.out is None:
            parser.error("--only needs --out: it would remove the other sources from .cache/real")
        if args.only:
            reports = build_real(args.mirrors, args.out, sources, only=tuple(args.only))
        else:  # held-out sources go to .cache/heldout, which training never reads
            reports = build_all(args.mirrors, args.out or CACHE_ROOT, sources_file=sources)
        for r in reports:
            print(
                f"{r.name}\t{r.format}\t{r.stems} source images\t{r.kept} kept\tdropped {r.dropped}"
            )
        masks = sum(r.kept for r in reports if r.format not in BOX_FORMATS)
        boxes = sum(r.kept for r in reports if r.format in BOX_FORMATS)
        print(f"total\t{masks} photos with masks, {boxes} with boxes only")
    elif args.command == "teacher":
        from .real import CACHE_ROOT, TEACHER_ROOT
        from .teacher import build_teacher

        verdicts = build_teacher(tuple(args.boxes or (CACHE_ROOT,)), args.out or TEACHER_ROOT,
                                 threads=args.threads,
                                 sources=tuple(args.only) if args.only else None)
        dropped = dict(Counter(v.why for v in verdicts if not v.kept))
        print(f"{sum(v.kept for v in verdicts)} of {len(verdicts)} photos kept, dropped {dropped}")
    else:
        print((args.cache / "manifest.json").read_text())


if __name__ == "__main__":
    main()
