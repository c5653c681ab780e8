"""The worker's fixed mmap threshold: image-sized buffers go back to the system when freed.

Each case runs in a fresh interpreter, since the setting is per process. The control case shows
what the setting prevents (glibc's self-raising threshold keeping freed 16 MiB buffers on the
heap, pinned by small allocations made meanwhile)."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from service.workers.memory import fix_mmap_threshold

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc only")

PROBE = """
import json, sys
import numpy as np
from service.workers.memory import fix_mmap_threshold

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

took = fix_mmap_threshold(int(sys.argv[1]))
first = np.ones(16 << 20, np.uint8); del first  # glibc's default raises its threshold here
before, pinned = rss_mib(), []
for _ in range(6):  # image-sized buffers, each followed by a small long-lived allocation
    buffer = np.ones(16 << 20, np.uint8); pinned.append(np.ones(1000)); del buffer
print(json.dumps({"took": took, "growth_mib": rss_mib() - before}))
"""


def probe(threshold_bytes: int) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, str(threshold_bytes)],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_fixed_threshold_returns_freed_image_buffers():
    control, fixed = probe(0), probe(1 << 20)
    assert not control["took"] and fixed["took"]
    assert control["growth_mib"] > 12, control  # what the setting is for: a buffer kept
    assert fixed["growth_mib"] < 4, fixed


def test_zero_leaves_the_default():
    assert fix_mmap_threshold(0) is False


ARENA_PROBE = """
import json, sys
import numpy as np, onnxruntime as ort
from service.pipeline.sessions import OnnxModel, RuntimeConfig
from service.workers.memory import fix_mmap_threshold

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

fix_mmap_threshold(32 << 20)  # as a worker does
shrink = sys.argv[2] == "1"
model = OnnxModel(sys.argv[1], None, None, RuntimeConfig(threads=1, arena_shrinkage=shrink))
shapes = [(1, 4, 32 * h, 32 * w) for h, w in [(16, 15), (14, 16), (16, 13), (12, 16), (15, 11),
                                               (13, 14), (16, 9), (10, 15), (11, 12), (9, 16)]]
model.run(np.zeros((1, 4, 128, 128), np.float32))
before = rss_mib()
for shape in shapes:  # the request's run options, as the runner passes them
    model.run(np.random.default_rng(0).random(shape, dtype=np.float32), ort.RunOptions())
print(json.dumps({"growth_mib": rss_mib() - before}))
"""


def arena_probe(shrinkage: bool) -> float:
    matting = Path(__file__).resolve().parents[2] / "models" / "matting.onnx"
    done = subprocess.run([sys.executable, "-c", ARENA_PROBE, str(matting), str(int(shrinkage))],
                          capture_output=True, text=True, timeout=600, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    return json.loads(done.stdout)["growth_mib"]


@pytest.mark.slow
def test_arena_shrinkage_bounds_memory_over_new_shapes():
    """The bundled matting net at ten band sizes it has not seen: the arena kept grows by the
    buffers of each (the control), shrinkage gives them back after every run."""
    kept, shrunk = arena_probe(False), arena_probe(True)
    assert kept > 60, kept
    assert shrunk < 25, shrunk
