"""Imported by the pool's multiprocessing forkserver, and only there (`WorkerPool` names it as
the forkserver's preload): the worker's modules (NumPy, OpenCV, Pillow, ONNX Runtime) are imported
once, so each worker forked from it starts 1-2 s sooner.

The forkserver ignores SIGTERM, as workers do: a SIGTERM sent to the whole process group
(systemd's default, `kill -- -PGID`) must not take it down while the server finishes its
in-flight work. It still exits when the server process is gone (multiprocessing's liveness
pipe).
"""
import signal

from . import worker  # noqa: F401 - the point of this module: import the worker's stack once

signal.signal(signal.SIGTERM, signal.SIG_IGN)
