"""`cutout remove --engine ray`: the same pipeline over Ray Data, for catalogues larger than
one machine. Needs the `batch` extra (`pip install -e '.[batch]'`); the server never imports it.

Files are listed here (local paths or any URL pyarrow's filesystems open: `s3://`, `gs://`,
`hdfs://`, `file://`), the ones whose output exists are skipped, and the rest go through
`map_batches` over a pool of actors, each holding one `Pipeline` whose ONNX Runtime threads
match the CPUs Ray gave the actor. An actor reads its input and writes its output itself
(`name.partial`, then a move: a crash never leaves a file a resumed run takes as done) and
answers one row per file: the error or none, and the node that did it.
"""
from __future__ import annotations

import logging
import os
import posixpath
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ServiceError
from .pipeline import CutoutOptions, Pipeline, PipelineConfig


@dataclass(frozen=True)
class Location:
    """A filesystem and a path on it (pyarrow's), made from a local path or a URL."""

    filesystem: Any  # pyarrow.fs.FileSystem (pyarrow ships no type information)
    path: str

    @classmethod
    def parse(cls, text: str) -> Location:
        from pyarrow import fs

        if "://" in text:
            filesystem, path = fs.FileSystem.from_uri(text)
            return cls(filesystem, path.rstrip("/"))
        return cls(fs.LocalFileSystem(), os.path.abspath(text))

    def join(self, relative: str) -> Location:
        return Location(self.filesystem, posixpath.join(self.path, relative))


def find_jobs(inputs: list[str], out: str, suffix: str, image_suffixes: set[str]
              ) -> list[tuple[Location, Location]]:
    """(source, destination) for every image under the inputs, like the local engine's."""
    from pyarrow import fs

    target = Location.parse(out)
    jobs = []
    for text in inputs:
        source = Location.parse(text)
        info = source.filesystem.get_file_info(source.path)
        if info.type == fs.FileType.Directory:
            selector = fs.FileSelector(source.path, recursive=True)
            files = sorted(f.path for f in source.filesystem.get_file_info(selector)
                            if f.type == fs.FileType.File
                            and posixpath.splitext(f.path)[1].lower() in image_suffixes)
            for path in files:
                relative = posixpath.relpath(path, source.path)
                jobs.append((Location(source.filesystem, path),
                             target.join(posixpath.splitext(relative)[0] + suffix)))
        elif info.type == fs.FileType.File:
            name = posixpath.basename(source.path)
            jobs.append((source, target.join(posixpath.splitext(name)[0] + suffix)))
        else:
            raise FileNotFoundError(f"no such file or folder: {text}")
    return jobs


def is_done(location: Location) -> bool:
    from pyarrow import fs

    info = location.filesystem.get_file_info(location.path)
    return info.type == fs.FileType.File and (info.size or 0) > 0


class CutoutActor:
    """One pipeline per actor, set up once; cuts out the files of each batch in turn."""

    def __init__(self, config: PipelineConfig, options: CutoutOptions) -> None:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        self.pipeline = Pipeline(config.model_copy(update={"threads": max(1, int(cpus))}))
        self.options = options
        self.node = ray.util.get_node_ip_address()  # hosts may share a hostname

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        errors = [self._cut(src, dst) for src, dst in zip(batch["src"], batch["dst"], strict=True)]
        return {"src": batch["src"], "error": np.array(errors, dtype=object),
                "node": np.array([self.node] * len(errors), dtype=object),
                "pid": np.array([os.getpid()] * len(errors))}

    def _cut(self, src: str, dst: str) -> str:
        """The error in words, or '' when the file was written."""
        try:
            source, target = Location.parse(src), Location.parse(dst)
            with source.filesystem.open_input_stream(source.path) as stream:
                data = stream.read()
            body = self.pipeline.run(data, self.options).body
            target.filesystem.create_dir(posixpath.dirname(target.path), recursive=True)
            partial = target.path + ".partial"
            with target.filesystem.open_output_stream(partial) as stream:
                stream.write(body)
            target.filesystem.move(partial, target.path)
        except ServiceError as exc:
            return exc.message
        except OSError as exc:
            return str(exc)
        return ""


def uri(location: Location) -> str:
    """A string the actors can parse back: the path for local files, else a URL."""
    from pyarrow import fs

    if isinstance(location.filesystem, fs.LocalFileSystem):
        return location.path
    return f"{location.filesystem.type_name}://{location.path}"


def remove(inputs: list[str], out: str, options: CutoutOptions, config: PipelineConfig, *,
           suffix: str, image_suffixes: set[str], overwrite: bool, quiet: bool,
           address: str | None, threads: int, actors: int | None) -> int:
    """Cut out every image under `inputs` into `out` on a Ray cluster: the exit code of
    `cutout remove` (0 all done, 1 some failed)."""
    import ray
    from tqdm import tqdm

    jobs = find_jobs(inputs, out, suffix, image_suffixes)
    todo = [(src, dst) for src, dst in jobs if overwrite or not is_done(dst)]
    skipped = len(jobs) - len(todo)
    if not todo:
        print(f"nothing to do: {len(jobs)} file(s), all done already in {out}")
        return 0
    # Without an address, a fresh local instance: never a cluster some earlier `ray start` left
    # in Ray's temporary files (ray.init's own default would join it).
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-run INFO lines
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours below
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        pool = actors or max(1, cluster_cpus // threads)
        items = [{"src": uri(src), "dst": uri(dst)} for src, dst in todo]
        results = ray.data.from_items(items).map_batches(
            CutoutActor, fn_constructor_args=(config, options), batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(pool, len(items))), num_cpus=threads)
        failed = 0
        nodes: dict[str, int] = {}  # images cut out per Ray node
        with tqdm(total=len(jobs), initial=skipped, unit="img", desc="cutout (ray)",
                  disable=quiet) as progress:
            for row in results.iter_rows():
                nodes[row["node"]] = nodes.get(row["node"], 0) + 1
                if row["error"]:
                    failed += 1
                    progress.write(f"failed: {row['src']}: {row['error']}", file=sys.stderr)
                progress.update(1)
    finally:
        ray.shutdown()
    per_node = ", ".join(f"{node} {count}" for node, count in sorted(nodes.items()))
    print(f"{len(todo) - failed} written, {skipped} skipped (already done), {failed} failed -> "
          f"{out} (ray: {pool} actor(s) x {threads} thread(s); files per node: {per_node})")
    return 1 if failed else 0

