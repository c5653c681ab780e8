"""Training-step throughput of both nets, float32 against bfloat16 autocast.

    python -m bench.train_step [--steps 4] [--threads 2] [--seg-size 320] [--matting-size 256]

Times full steps (forward, float32 loss, backward, AdamW) of the segmenter and the matting net
on random batches the shape `python -m model_export.train` uses, once per precision
(`--precision` of the trainer), after two warm-up steps. Prints images per second and the
bf16 / fp32 ratio measured in the same run. bf16 pays off on CPUs with native bfloat16 dot
products (AVX512-BF16, AMX); without them it can be slower. A benchmark, not a test: read the
ratio when the machine is shared (a training run beside it halves both figures).
"""
from __future__ import annotations

import argparse
import time

import torch

from model_export.models import MattingConfig, SegmenterConfig, build_matting, build_segmenter


def images_per_second(net: torch.nn.Module, channels: int, size: int, batch: int, steps: int,
                      bf16: bool) -> float:
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    forward = getattr(net, "forward_raw", net)  # the matting net's loss reads its raw alpha
    x = torch.randn(batch, channels, size, size)
    target = torch.rand(batch, 1, size, size)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = forward(x)
        loss = torch.nn.functional.l1_loss(out.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seg-size", type=int, default=320)
    parser.add_argument("--matting-size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nets = {"segmenter": (lambda: build_segmenter(SegmenterConfig()), 3, args.seg_size),
            "matting": (lambda: build_matting(MattingConfig()), 4, args.matting_size)}
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}")
    print(f"{'net':<10} {'size':>5} {'fp32 img/s':>11} {'bf16 img/s':>11} {'bf16/fp32':>10}")
    for name, (build, channels, size) in nets.items():
        rates = {}
        for bf16 in (False, True):
            torch.manual_seed(0)
            rates[bf16] = images_per_second(build(), channels, size, args.batch, args.steps, bf16)
        print(f"{name:<10} {size:>5} {rates[False]:>11.2f} {rates[True]:>11.2f} "
              f"{rates[True] / rates[False]:>9.2f}x")


if __name__ == "__main__":
    main()
