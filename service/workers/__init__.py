"""Process workers: each spawned worker holds its own ONNX Runtime sessions (LitServe's
lifecycle: setup once, warm up, report READY, then decode/predict/encode per request)."""
from .pool import WorkerPool, WorkerState

__all__ = ["WorkerPool", "WorkerState"]
