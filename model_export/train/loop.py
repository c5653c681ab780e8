"""A resumable, time-budgeted training loop.

The learning rate follows warm-up then cosine decay over the *time* budget, so a run stopped
and resumed (sessions end, machines change) ends on the same schedule. Checkpoints hold the
model, its EMA, optimiser, elapsed time and configs; `last.pt` is rewritten atomically.
"""
from __future__ import annotations

import copy
import json
import math
import os
import random
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..encoders.efficientnet_lite import load_imagenet_weights
from ..models import build_segmenter
from ..models.deeplabv3plus import grow_segmenter
from ..onnx_import import load_onnx_weights
from ..trained import spec_beside
from .config import TrainConfig
from .tasks import build_task
from .travel import load_checkpoint, shipped_weights


def native_bf16(cpu_flags: str) -> bool:
    """Whether a CPU with these /proc/cpuinfo flags computes bfloat16 in hardware (AVX512-BF16 or
    AMX). Without them autocast emulates it: a segmenter step ran 4x slower than float32 on an
    AVX2-only EPYC (docs/training.md)."""
    flags = set(cpu_flags.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _cpu_flags() -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return next((line.split(":", 1)[1] for line in text.splitlines()
                 if line.startswith("flags")), None)


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))  # short warm-up: early EMA tracks fast
        for ema_v, v in zip(
            self.model.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if ema_v.dtype.is_floating_point:
                ema_v.mul_(decay).add_(v.detach(), alpha=1 - decay)
            else:
                ema_v.copy_(v)


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(config.threads)
        # No OpenCV thread pool in the trainer: a loader worker forked after the pool started
        # (validation resizes with OpenCV) hung in its own cv2.setNumThreads (seen in a run).
        cv2.setNumThreads(1)
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed)
        self.task = build_task(config)
        # channels_last measured slower for these nets (AVX2) or no faster (AVX512-BF16) on 2 cores.
        self.model = self.task.model.to(config.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.ema = EMA(self.model, config.ema_decay)
        self.step = 0
        self.epoch = 0
        self.elapsed = 0.0
        self.best: float | None = None
        self._resume()

    # ---- checkpoints -------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    def _resume(self) -> None:
        if not self.last_path.exists():
            if self.config.init_weights is not None:
                self._initialise(Path(self.config.init_weights))
            elif self.config.encoder_weights == "imagenet":
                load_imagenet_weights(self.model.encoder)
                self.ema.model.load_state_dict(self.model.state_dict())
                self.log({"event": "initialised", "from": "imagenet encoder"})
            return
        state = torch.load(self.last_path, map_location=self.config.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.ema.model.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.elapsed, self.best = state["step"], state["elapsed"], state.get("best")
        self.epoch = state.get("epoch", 0)
        self.log({"event": "resumed", "step": self.step, "elapsed_min": self.elapsed / 60})

    def _initialise(self, source: Path) -> None:
        """A new run from trained weights (a checkpoint, a travel folder or an exported graph):
        both the net and its EMA start from them; the optimiser, warm-up and schedule start
        afresh. A segmenter trained on a shallower EfficientNet-Lite (Lite0 weights for a Lite1
        run) is grown into this run's net first (`grow_segmenter`)."""
        state = None if source.suffix == ".onnx" else load_checkpoint(source)
        source_encoder = self._source_encoder(source, state)
        into = self.model
        if source_encoder != self.config.segmenter.encoder:
            into = build_segmenter(self.config.segmenter.model_copy(
                update={"encoder": source_encoder}))
        if state is None:
            load_onnx_weights(into, source, self._calibration_inputs())
        else:
            into.load_state_dict(shipped_weights(state))
        if into is not self.model:
            grow_segmenter(into, self.model)
        self.ema.model.load_state_dict(self.model.state_dict())
        self._train_mode()
        self.log({"event": "initialised", "from": str(source),
                  "source_step": None if state is None else state.get("step"),
                  "grown_from": source_encoder if into is not self.model else None})

    def _source_encoder(self, source: Path, state: dict | None) -> str:
        """The segmenter encoder the initial weights were trained with; this run's own for the
        matting task or where the source does not say."""
        if self.config.task != "seg":
            return self.config.segmenter.encoder
        if state is not None:
            config = state.get("model_config") or {}
        else:
            config = (spec_beside(source) or {}).get("segmenter", {})
        return config.get("encoder", self.config.segmenter.encoder)

    def _train_mode(self) -> None:
        self.model.train()
        if self.config.freeze_norm:
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def _calibration_inputs(self, batches: int = 8):
        """Training inputs for the BatchNorm statistics a graph's folded convs lack."""
        loader = DataLoader(self.task.dataset(), batch_size=self.config.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(self.config.seed))
        for index, batch in enumerate(loader):
            if index == batches:
                return
            yield self.task.inputs({k: v.to(self.config.device) for k, v in batch.items()})

    def _state(self) -> dict:
        model_config = self.config.segmenter if self.config.task == "seg" else self.config.matting
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "elapsed": self.elapsed,
            "best": self.best,
            "model_config": model_config.model_dump(),
            "train_config": json.loads(self.config.model_dump_json()),
        }

    def save(self, path: Path | None = None) -> None:
        path = path or self.last_path
        tmp = path.with_suffix(".tmp")
        torch.save(self._state(), tmp)
        os.replace(tmp, path)

    # ---- logging -------------------------------------------------------------------------
    def log(self, record: dict) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}
        line = json.dumps(record)
        print(line, flush=True)
        with open(self.run_dir / "train.log", "a") as f:
            f.write(line + "\n")

    def autocast(self) -> torch.autocast:
        """The forward passes of a training step; tasks compute their losses in float32."""
        device_type = torch.device(self.config.device).type
        return torch.autocast(device_type, dtype=torch.bfloat16,
                              enabled=self.config.precision == "bf16")

    # ---- schedule ------------------------------------------------------------------------
    def lr_at(self) -> float:
        budget = self.config.time_budget_min * 60
        warm = min(1.0, (self.step + 1) / self.config.warmup_steps)
        progress = min(1.0, self.elapsed / budget)
        return self.config.lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))

    # ---- main loop -----------------------------------------------------------------------
    def validate(self) -> None:
        scores = self.task.validate(self.ema.model)
        if not scores:
            return
        self.log({"event": "validate", "step": self.step, **scores})
        key = next(iter(scores))
        # IoU-like scores are higher-better, errors (mad) lower-better.
        value = scores[key] if "iou" in key else -scores[key]
        if self.best is None or value > self.best:
            self.best = value
            self.save(self.run_dir / "best.pt")

    def fit(self, dataset=None) -> None:
        """Train until the time budget is spent; `dataset` defaults to the task's own."""
        cfg = self.config
        from ..data import worker_init

        dataset = dataset if dataset is not None else self.task.dataset()
        flags = _cpu_flags() if torch.device(cfg.device).type == "cpu" else None
        if cfg.precision == "bf16" and flags is not None and not native_bf16(flags):
            self.log({"event": "warning", "message": "--precision bf16 on a CPU without "
                      "AVX512-BF16 or AMX: bfloat16 is emulated and slower than fp32"})
        # Workers are re-created each epoch so they see the dataset's new epoch (its items are
        # a pure function of seed, epoch and index: reproducible across resumes).
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            shuffle=True,
            num_workers=cfg.loader_workers,
            drop_last=True,
            worker_init_fn=worker_init,
            generator=torch.Generator().manual_seed(cfg.seed + self.epoch),
        )
        budget = cfg.time_budget_min * 60
        # SIGTERM / SIGINT end the run cleanly: checkpoint, validate, keep the best.
        stop = {"requested": False}

        def request_stop(signum, frame) -> None:
            stop["requested"] = True

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        last_ckpt = last_val = time.monotonic()
        window_images, window_start = 0, time.monotonic()
        # The budget counts the loop's wall time, waits for the loader included (on a GPU the
        # loader, not the step, sets the pace), and leaves out checkpoints and validation.
        step_start = time.monotonic()
        self._train_mode()
        while self.elapsed < budget and not stop["requested"]:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(self.epoch)
            loader.generator.manual_seed(cfg.seed + self.epoch)
            self.epoch += 1
            for batch in loader:
                batch = {k: v.to(cfg.device) for k, v in batch.items()}
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr_at()
                with self.autocast():
                    loss, logs = self.task.loss(self.model, batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
                self.optimizer.step()
                self.ema.update(self.model, self.step)
                self.step += 1
                now = time.monotonic()
                self.elapsed += now - step_start
                window_images += cfg.batch_size
                if self.step % cfg.log_every_steps == 0:
                    rate = window_images / (now - window_start)
                    self.log(
                        {
                            "step": self.step,
                            "lr": round(self.lr_at(), 6),
                            "elapsed_min": round(self.elapsed / 60, 2),
                            "images_per_s": round(rate, 2),
                            **{k: round(v, 4) for k, v in logs.items()},
                        }
                    )
                    window_images, window_start = 0, now
                if now - last_ckpt > cfg.checkpoint_every_min * 60:
                    self.save()
                    last_ckpt = time.monotonic()
                if now - last_val > cfg.validate_every_min * 60:
                    self.validate()
                    self.save()
                    last_val = last_ckpt = time.monotonic()
                step_start = time.monotonic()
                if self.elapsed >= budget or stop["requested"]:
                    break
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        self.save()
        self.validate()
        self.save()
        self.log({"event": "stopped" if stop["requested"] else "done", "step": self.step,
                  "elapsed_min": self.elapsed / 60})
