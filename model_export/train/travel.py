"""Weights small enough to travel to and from a lent GPU machine.

A full checkpoint (weights, EMA, AdamW moments) of the segmenter is ~190 MB, but the device tool
carries 64 MiB in all and brings back files of at most 16 MiB. A travel folder holds only the EMA
weights, in float16, split into shards of at most `shard_mib`, plus `meta.json` (the model and
training configs, step, elapsed time):

    python -m model_export.train.travel pack runs/seg/last.pt .cache/travel/seg   # here
    python -m model_export.train seg --run-dir runs/seg_gpu --init-weights .cache/travel/seg \\
        --device cuda ...                                                        # there
    python -m model_export.train.travel pack runs/seg_gpu/last.pt $OUT/seg         # there
    python -m model_export.train seg --run-dir runs/seg2 --init-weights OUT/seg    # back here

`--init-weights` starts a new run from those weights (a fresh optimiser, warm-up and schedule);
`python -m model_export.export` reads a travel folder wherever it takes a checkpoint.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

META = "meta.json"
SHARD = "weights-{:02d}.pt"
_KEPT = ("step", "epoch", "elapsed", "best", "model_config", "train_config")


def shipped_weights(state: dict) -> dict[str, torch.Tensor]:
    """The weights a checkpoint stands for: its EMA when it has one (what is validated and
    exported), else the raw net's."""
    return state.get("ema") or state["model"]


def pack(checkpoint: Path, out: Path, shard_mib: float = 15.0) -> list[Path]:
    """Write the checkpoint's EMA weights (float16) in shards, and its configs; returns the
    files written."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    weights = shipped_weights(state)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("weights-*.pt"):
        old.unlink()
    limit = shard_mib * 2**20 * 0.98  # room for torch.save's own bookkeeping
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in weights.items():
        tensor = tensor.half() if tensor.is_floating_point() else tensor
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][name] = tensor.contiguous()
        size += nbytes
    written = []
    for index, shard in enumerate(shards):
        path = out / SHARD.format(index)
        torch.save(shard, path)
        written.append(path)
    meta = {key: state.get(key) for key in _KEPT}
    (out / META).write_text(json.dumps(meta, indent=1))
    written.append(out / META)
    return written


def load(folder: Path) -> dict:
    """A travel folder as a checkpoint-like dict: {"ema": float32 weights, "model_config", ...}."""
    weights: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("weights-*.pt")):
        shard = torch.load(path, map_location="cpu", weights_only=True)
        weights.update({k: v.float() if v.is_floating_point() else v for k, v in shard.items()})
    if not weights:
        raise FileNotFoundError(f"no weights-*.pt shards in {folder}")
    meta = json.loads((folder / META).read_text())
    return {**meta, "ema": weights}


def load_checkpoint(path: Path) -> dict:
    """A checkpoint file (`last.pt`, `best.pt`) or a travel folder."""
    if Path(path).is_dir():
        return load(Path(path))
    return torch.load(path, map_location="cpu", weights_only=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    packer = commands.add_parser("pack", help="checkpoint -> travel folder")
    packer.add_argument("checkpoint", type=Path)
    packer.add_argument("out", type=Path)
    packer.add_argument("--shard-mib", type=float, default=15.0)
    args = parser.parse_args(argv)
    for path in pack(args.checkpoint, args.out, args.shard_mib):
        print(f"{path} {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
