"""Training: losses fall on a tiny batch, ED training trimaps are sound, runs resume."""
from __future__ import annotations

import json

import pytest
import torch

from model_export.train.config import TrainConfig
from model_export.train.loop import Trainer, native_bf16
from model_export.train.tasks import MattingTask, SegmentationTask


def _disc_batch(n: int = 2, size: int = 64) -> dict[str, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    radius = torch.sqrt((yy - size / 2.0) ** 2 + (xx - size / 2.0) ** 2)
    alpha = torch.clamp((size / 4 + 2 - radius) / 4, 0, 1)[None, None].repeat(n, 1, 1, 1)
    fg = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1).expand(n, 3, size, size)
    bg = torch.tensor([0.1, 0.3, 0.8]).view(1, 3, 1, 1).expand(n, 3, size, size)
    rgb = alpha * fg + (1 - alpha) * bg
    image = (rgb - 0.45) / 0.225
    return {"image": image, "mask": alpha, "alpha": alpha, "fg": fg, "bg": bg}


def _steps(task, batch, steps: int = 6) -> tuple[float, float]:
    torch.manual_seed(0)
    model = task.model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = last = None
    for _ in range(steps):
        loss, _ = task.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
    return first, last


def test_segmentation_step_lowers_loss(tmp_path):
    torch.manual_seed(0)
    task = SegmentationTask(TrainConfig(task="seg", run_dir=tmp_path))
    first, last = _steps(task, _disc_batch())
    assert last < first * 0.9


def test_matting_step_lowers_loss(tmp_path):
    torch.manual_seed(0)
    task = MattingTask(TrainConfig(task="matting", run_dir=tmp_path))
    first, last = _steps(task, _disc_batch())
    assert last < first * 0.9


def test_training_trimap_marks_every_translucent_pixel_unknown(tmp_path):
    task = MattingTask(TrainConfig(task="matting", run_dir=tmp_path))
    alpha = _disc_batch(n=4)["alpha"]
    trimap = task.make_trimap(alpha)
    assert set(trimap.unique().tolist()) <= {0.0, 0.5, 1.0}
    translucent = (alpha > 0.02) & (alpha < 0.98)
    assert (trimap[translucent] == 0.5).all()
    # Deep inside the disc is known foreground, far corners known background.
    assert (trimap[:, :, 32, 32] == 1.0).all()
    assert (trimap[:, :, 0, 0] == 0.0).all()


def test_matting_trimaps_from_the_segmenters_own_prediction(tmp_path, random_model_dir):
    """With --trimap-segmenter the trimap is the ED layer on what the shipped segmenter graph
    predicts (no GT written into it), as the service builds it."""
    import onnxruntime as ort

    graph = random_model_dir / "segmenter.onnx"
    task = MattingTask(TrainConfig(task="matting", run_dir=tmp_path, trimap_segmenter=graph,
                                   segmenter_trimap_share=1.0))
    batch = _disc_batch(n=2)
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    graph_mask = session.run(None, {name: batch["image"].numpy()})[0] > 0.5
    torch_mask = task.segmenter_probability(batch["image"]).numpy() > 0.5
    assert (graph_mask == torch_mask).mean() > 0.99
    trimap = task.make_trimap(batch["alpha"], batch["image"])
    # Erosion and dilation of the segmenter's mask (random rates): known foreground lies inside
    # it, known background outside, whatever the GT says.
    known = trimap != 0.5
    assert known.any()
    assert torch.equal(trimap[known] == 1.0, torch.from_numpy(torch_mask)[known])
    # Without an image the GT path is kept: every translucent GT pixel is unknown.
    translucent = (batch["alpha"] > 0.02) & (batch["alpha"] < 0.98)
    assert (task.make_trimap(batch["alpha"])[translucent] == 0.5).all()


class _Discs(torch.utils.data.Dataset):
    def __init__(self) -> None:
        batch = _disc_batch(n=1)
        self.item = {k: v[0] for k, v in batch.items() if k in ("image", "mask")}

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.item


def _quick_seg_config(run_dir, monkeypatch, **overrides) -> TrainConfig:
    """A tiny segmentation run in the calling process, with validation stubbed to a constant
    (the CCP photos are not what these tests are about)."""
    monkeypatch.setattr(
        SegmentationTask, "validate", lambda self, model, limit=None: {"ccp_val_iou": 0.5}
    )
    settings = {"task": "seg", "run_dir": run_dir, "batch_size": 2, "loader_workers": 0,
                "log_every_steps": 1}
    return TrainConfig(**{**settings, **overrides})


def test_trainer_checkpoints_and_resumes(tmp_path, monkeypatch):
    config = _quick_seg_config(tmp_path, monkeypatch, time_budget_min=0.01)
    trainer = Trainer(config)
    trainer.fit(_Discs())
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    steps = trainer.step
    assert steps > 0
    # Give the resumed run budget beyond what the first one spent (steps are slow under load).
    resumed = Trainer(config.model_copy(update={"time_budget_min": trainer.elapsed / 60 + 0.01}))
    assert resumed.step == steps
    resumed.fit(_Discs())
    assert resumed.step > steps
    events = [
        json.loads(line).get("event") for line in (tmp_path / "train.log").read_text().splitlines()
    ]
    assert "resumed" in events and events.count("done") == 2


def test_sigterm_stops_a_run_with_a_checkpoint(tmp_path, monkeypatch):
    import os
    import signal
    import threading

    config = _quick_seg_config(tmp_path, monkeypatch, time_budget_min=60)
    trainer = Trainer(config)
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    trainer.fit(_Discs())  # would run an hour without the signal
    timer.cancel()
    assert (tmp_path / "last.pt").exists()
    events = [
        json.loads(line).get("event") for line in (tmp_path / "train.log").read_text().splitlines()
    ]
    assert events[-1] == "stopped"
    assert trainer.elapsed < 60 * 60


def test_travel_folder_is_small_and_starts_a_new_run(tmp_path, monkeypatch):
    """A checkpoint packed for a lent GPU (float16 EMA weights in shards) starts a new run with
    those weights, and the export reads it as it reads a checkpoint."""
    from model_export.models import SegmenterConfig, build_segmenter
    from model_export.train import travel
    from model_export.trained import load_trained

    config = _quick_seg_config(tmp_path / "cpu", monkeypatch, time_budget_min=0.005)
    trainer = Trainer(config)
    trainer.fit(_Discs())
    checkpoint = tmp_path / "cpu" / "last.pt"
    files = travel.pack(checkpoint, tmp_path / "travel", shard_mib=8)
    shards = [f for f in files if f.suffix == ".pt"]
    assert len(shards) >= 2  # the ~23 MB of float16 weights do not fit one 8 MiB shard
    assert all(f.stat().st_size <= 8 * 2**20 for f in shards)
    assert sum(f.stat().st_size for f in files) < checkpoint.stat().st_size / 6

    ema = trainer.ema.model.state_dict()
    started = Trainer(config.model_copy(update={"run_dir": tmp_path / "gpu",
                                                "init_weights": tmp_path / "travel"}))
    assert started.step == 0
    for name, value in started.model.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, ema[name].half().float())
    events = [
        json.loads(line).get("event")
        for line in (tmp_path / "gpu" / "train.log").read_text().splitlines()
    ]
    assert events == ["initialised"]

    _net, net_config, _ = load_trained(tmp_path / "travel", build_segmenter, SegmenterConfig)
    assert net_config == SegmenterConfig(
        **torch.load(checkpoint, weights_only=False)["model_config"]
    )


class _SlowDiscs(_Discs):
    """A loader slower than the step, as on a GPU."""

    delay_s = 0.05

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        import time

        time.sleep(self.delay_s)
        return self.item


def test_time_budget_counts_waits_for_the_loader(tmp_path, monkeypatch):
    import time

    config = _quick_seg_config(tmp_path, monkeypatch, time_budget_min=0.02)
    trainer = Trainer(config)
    start = time.monotonic()
    trainer.fit(_SlowDiscs())
    wall = time.monotonic() - start
    assert trainer.elapsed >= trainer.step * config.batch_size * _SlowDiscs.delay_s
    assert trainer.elapsed <= wall


def test_edge_weight_makes_a_filled_hole_cost_more():
    """A ring (an object with a hole): filling the hole and missing an equal area of the solid
    part cost the same plain BCE; with edge weighting the filled hole, all of it near an edge,
    costs more, and edge_weight=0 is the plain loss."""
    from model_export.train.losses import bce_dice_loss, edge_band

    size = 64
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    radius = torch.sqrt((yy - 32.0) ** 2 + (xx - 32.0) ** 2)
    ring = ((radius < 28) & (radius >= 4)).float()[None, None]
    hole = (radius < 4).float()[None, None]
    filled = ring + hole
    # The same number of pixels lost deep inside the solid part (not near any edge).
    lost_area = ((radius >= 14) & (radius < 20) & (xx >= 32)).float()
    k = int(hole.sum().item())
    lost = torch.zeros(size * size)
    lost[torch.nonzero(lost_area.flatten()).flatten()[:k]] = 1
    punched = ring - lost.view(1, 1, size, size)
    assert int(filled.sum() - ring.sum()) == int(ring.sum() - punched.sum()) == k

    def logits(pred: torch.Tensor) -> torch.Tensor:
        return (pred * 2 - 1) * 4.0

    assert (edge_band(ring, 4) * hole).sum() == hole.sum()  # the hole lies within the edge band
    assert (edge_band(ring, 4) * lost_area).sum() == 0  # the punched area lies outside it
    plain = [bce_dice_loss(logits(p), ring).item() for p in (filled, punched)]
    assert abs(plain[0] - plain[1]) < 0.02
    assert bce_dice_loss(logits(filled), ring, edge_weight=0.0).item() == plain[0]
    weighted = [bce_dice_loss(logits(p), ring, edge_weight=4.0, edge_radius=4).item()
                for p in (filled, punched)]
    assert weighted[0] > weighted[1] + 0.02


def test_teacher_confidence_spares_the_pixels_the_teacher_is_unsure_of():
    """A soft sample's BCE counts each pixel by the teacher's confidence (2p - 1)^2: a wrong
    prediction where the teacher said 0.5 costs nothing, where it said 0.95 it costs; a
    sample flagged hard keeps the plain loss."""
    from model_export.train.losses import bce_dice_loss

    target = torch.zeros(1, 1, 32, 32)
    target[..., 8:24, 8:24] = 0.95  # the object, sure
    target[..., 8:24, 24:28] = 0.5  # a strip the teacher cannot decide
    right = torch.where(target > 0.5, 4.0, -4.0)
    in_strip = right.clone()
    in_strip[..., 8:24, 24:28] = 4.0  # calls the unsure strip object
    in_object = right.clone()
    in_object[..., 8:24, 8:12] = -4.0  # drops a sure strip of the object, as large
    soft, hard = torch.ones(1), torch.zeros(1)

    def bce(logits: torch.Tensor, flag: torch.Tensor | None) -> float:
        # Dice (no weights) is all but 0 with a huge smoothing term: the BCE part is left
        return bce_dice_loss(logits, target, smooth=1e9, soft=flag).item()

    base = bce(right, soft)
    assert abs(bce(in_strip, soft) - base) < 1e-6  # the unsure strip is free
    assert bce(in_object, soft) > base + 0.1
    undecided = right.clone()
    undecided[..., 8:24, 24:28] = 0.0  # says 0.5 where the target is 0.5
    assert abs(bce(undecided, soft) - base) < 1e-6
    assert bce(right, hard) > bce(undecided, hard) + 0.05  # unflagged: every pixel counts
    assert bce_dice_loss(in_strip, target, soft=hard).item() == bce_dice_loss(in_strip,
                                                                              target).item()


def test_freeze_norm_keeps_running_statistics_while_weights_learn(tmp_path, monkeypatch):
    """--freeze-norm: after real training steps every BatchNorm's running statistics are the
    ones it started with, while the convs (and the norms' affine) moved; without it they drift."""
    def run(freeze: bool, folder: str) -> tuple[Trainer, dict[str, torch.Tensor]]:
        config = _quick_seg_config(tmp_path / folder, monkeypatch, time_budget_min=0.01,
                                   freeze_norm=freeze)
        trainer = Trainer(config)
        before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        trainer.fit(_Discs())
        assert trainer.step > 0
        return trainer, before

    trainer, before = run(True, "frozen")
    after = trainer.model.state_dict()
    stats = [k for k in after if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(after[k], before[k]) for k in stats)
    learnt = [k for k in after if k.endswith("weight") and after[k].dtype.is_floating_point]
    assert any(not torch.equal(after[k], before[k]) for k in learnt)

    trainer, before = run(False, "free")
    after = trainer.model.state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in stats)


def test_trimap_rate_range_from_the_command_line_sets_the_band_width(tmp_path):
    from model_export.train.__main__ import parse_config

    alpha = (_disc_batch(n=8, size=128)["alpha"] > 0.5).float()
    unknown = {}
    for rates in (("0.005", "0.01"), ("0.04", "0.05")):
        config = parse_config(
            ["matting", "--run-dir", str(tmp_path), "--trimap-rate-range", *rates]
        )
        assert config.trimap_rate_range == tuple(float(r) for r in rates)
        torch.manual_seed(0)
        unknown[rates[0]] = (MattingTask(config).make_trimap(alpha) == 0.5).float().mean().item()
    assert 0 < unknown["0.005"] < unknown["0.04"] / 3


def test_trimap_rate_range_must_be_ordered(tmp_path):
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        TrainConfig(task="matting", run_dir=tmp_path, trimap_rate_range=(0.05, 0.01))


def _autocast_steps(trainer: Trainer, steps: int = 6) -> list[torch.Tensor]:
    batch = _disc_batch()
    torch.manual_seed(0)
    opt = torch.optim.Adam(trainer.model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        with trainer.autocast():
            loss, _ = trainer.task.loss(trainer.model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss)
    return losses


@pytest.mark.parametrize("task", ["seg", "matting"])
def test_bf16_precision_runs_convolutions_in_bfloat16_and_still_learns(tmp_path, monkeypatch, task):
    """--precision bf16: the step's convolutions run in bfloat16 (what makes it faster), the
    loss comes back float32 and falls over a few steps; weights stay float32."""
    if task == "seg":
        config = _quick_seg_config(tmp_path, monkeypatch, precision="bf16")
    else:
        config = TrainConfig(task="matting", run_dir=tmp_path, precision="bf16")
    trainer = Trainer(config)
    seen: list[torch.dtype] = []
    for module in trainer.model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    losses = _autocast_steps(trainer)
    assert seen and set(seen) == {torch.bfloat16}
    assert all(loss.dtype == torch.float32 for loss in losses)
    assert losses[-1].item() < losses[0].item() * 0.9
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_fp32_precision_leaves_autocast_off(tmp_path, monkeypatch):
    trainer = Trainer(_quick_seg_config(tmp_path, monkeypatch))
    with trainer.autocast():
        assert trainer.model(_disc_batch()["image"]).dtype == torch.float32


def test_precision_from_the_command_line(tmp_path):
    from model_export.train.__main__ import parse_config

    assert parse_config(["seg", "--run-dir", str(tmp_path)]).precision == "fp32"
    assert (
        parse_config(["seg", "--run-dir", str(tmp_path), "--precision", "bf16"]).precision == "bf16"
    )
    with pytest.raises(SystemExit):
        parse_config(["seg", "--run-dir", str(tmp_path), "--precision", "fp8"])


def _framed_hole_batch(n: int = 2, size: int = 96) -> dict[str, torch.Tensor]:
    """A red square frame with a see-through hole on a pale backdrop (GT alpha 0 in the hole)."""
    alpha = torch.zeros(n, 1, size, size)
    alpha[..., 16:80, 16:80] = 1.0
    alpha[..., 36:60, 36:60] = 0.0
    fg = torch.tensor([0.8, 0.15, 0.15]).view(1, 3, 1, 1).expand(n, 3, size, size)
    bg = torch.tensor([0.92, 0.92, 0.94]).view(1, 3, 1, 1).expand(n, 3, size, size)
    rgb = alpha * fg + (1 - alpha) * bg
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return {"image": (rgb - mean) / std, "alpha": alpha, "fg": fg, "bg": bg}


def test_backdrop_marking_opens_a_filled_hole_and_weighs_it(tmp_path):
    """--backdrop-distance: a blob trimap that fills the hole gets the hole marked unknown by
    the service's own rule, and those pixels carry --backdrop-weight in the loss."""
    from model_export.train.tasks import mark_backdrop

    batch = _framed_hole_batch()
    filled = torch.zeros_like(batch["alpha"])
    filled[..., 12:84, 12:84] = 0.5
    filled[..., 20:76, 20:76] = 1.0                     # the segmenter's filled hole
    config = TrainConfig(task="matting", run_dir=tmp_path, backdrop_distance=6,
                         backdrop_share=1.0, backdrop_weight=4.0)
    marked = mark_backdrop(batch["image"], filled, 6, 1.0, config.matting)
    assert (marked[..., 38:58, 38:58] == 0.5).all()
    assert (marked[..., 22:34, 22:74] == 1.0).all()     # the frame stays known foreground
    changed = marked != filled
    assert (filled[changed] == 1.0).all()               # only known foreground ever changes
    assert (mark_backdrop(batch["image"], filled, 6, 0.0, config.matting) == filled).all()

    # --backdrop-weight reaches the loss: the same net and batch score differently with it.
    task = MattingTask(config)
    task._ed_trimap = lambda gt, image: filled.clone()
    model = task.model.eval()
    weighted, _ = task.loss(model, batch)
    task.config = config.model_copy(update={"backdrop_weight": 1.0})
    plain, _ = task.loss(model, batch)
    assert weighted.item() != pytest.approx(plain.item())


def test_matting_dataset_takes_holed_objects_and_the_studio_share(tmp_path):
    from model_export.train.__main__ import parse_config

    config = parse_config(["matting", "--run-dir", str(tmp_path), "--hole-share", "0.4",
                           "--studio-share", "1", "--data-cache", str(tmp_path / "none")])
    dataset = MattingTask(config).dataset()
    assert dataset.studio_share == 1.0
    assert dataset.lib.hole_share == 0.4


def test_bf16_is_native_only_with_avx512_bf16_or_amx() -> None:
    assert native_bf16("fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni")
    assert native_bf16("fpu avx2 amx_bf16 amx_tile")
    assert not native_bf16("fpu sse2 avx avx2 fma")  # an AVX2-only EPYC
    assert not native_bf16("avx512f avx512bw")  # AVX-512 without its bfloat16 part
