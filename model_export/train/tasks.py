"""What is trained: each task builds its net and dataset, computes the loss of a batch and
validates. The loop (loop.py) knows nothing task-specific."""
from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.ccp import DEFAULT_ROOT as CCP_ROOT
from ..data.ccp import ccp_split, load_ccp
from ..metrics import boundary_f_score, iou, mad
from ..models import SegmenterConfig, TrimapConfig, build_matting, build_segmenter, build_trimap
from ..trained import load_trained
from .config import TrainConfig
from .losses import bce_dice_loss, matting_loss


def letterbox_tensor(
    image: np.ndarray, long_side: int, multiple: int, mean, std
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Resize so the long side is `long_side`, normalise, pad with the mean (0 after
    normalisation, as the training letterbox views mostly do) to the multiple.
    Returns [1,3,H',W'] and the unpadded (h, w)."""
    import cv2

    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = cv2.resize(
        image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    x = (resized.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(
        std, np.float32
    )
    ph, pw = -nh % multiple, -nw % multiple
    x = np.pad(x, ((0, ph), (0, pw), (0, 0)))
    return torch.from_numpy(x.transpose(2, 0, 1).copy())[None], (nh, nw)


def _data_paths(config: TrainConfig) -> dict:
    paths: dict = {}
    if config.data_cache is not None:
        paths["cache"] = config.data_cache
    if config.ccp_root is not None:
        paths["ccp_root"] = config.ccp_root
    if config.real_roots is not None:
        paths["real_roots"] = tuple(config.real_roots)
    return paths


class SegmentationTask:
    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.model = build_segmenter(config.segmenter)

    def dataset(self):
        from ..data import SegmentationDataset

        return SegmentationDataset("train", size=self.config.size, seed=self.config.seed,
                                   ccp_share=self.config.ccp_share, length=self.config.epoch_size,
                                   hole_share=self.config.hole_share,
                                   real_share=self.config.real_share,
                                   own_tone_share=self.config.own_tone_share,
                                   shadow_share=self.config.shadow_share,
                                   soft_teacher=self.config.soft_teacher,
                                   **_data_paths(self.config))

    def inputs(self, batch: dict) -> torch.Tensor:
        return batch["image"]

    def loss(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(self.inputs(batch)).float()  # float32 losses under bf16 autocast
        loss = bce_dice_loss(logits, batch["mask"], edge_weight=self.config.edge_weight,
                             edge_radius=self.config.edge_radius,
                             soft=batch.get("soft") if self.config.soft_teacher else None)
        return loss, {"loss": loss.item()}

    @torch.no_grad()
    def validate(self, model: nn.Module, limit: int | None = None) -> dict[str, float]:
        """Mask IoU / boundary F per validation source at the serving letterbox: each real-photo
        source (data/real.py) and CCP. The first score, the mean IoU over sources, chooses
        best.pt: real photographs first, each source counted once whatever its size."""
        import cv2

        from ..data.real import DEFAULT_ROOTS, by_source, load_real, real_items

        cfg = self.config.segmenter
        root = self.config.ccp_root or CCP_ROOT
        real_roots = tuple(self.config.real_roots or DEFAULT_ROOTS)
        sets = {f"real_{name}": [load_real(item) for item in items[:limit]]
                for name, items in by_source(real_items("val", real_roots)).items()}
        sets["ccp_val"] = [load_ccp(item_id, root) for item_id in ccp_split("val", root)[:limit]]
        model.eval()
        scores: dict[str, float] = {}
        for name, pairs in sets.items():
            ious, bfs = [], []
            for image, gt in pairs:
                x, (nh, nw) = letterbox_tensor(
                    image, cfg.input_size, cfg.size_multiple, cfg.mean, cfg.std
                )
                prob = (
                    torch.sigmoid(model(x.to(self.config.device)))[0, 0, :nh, :nw]
                    .float()
                    .cpu()
                    .numpy()
                )
                prob = cv2.resize(prob, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
                ious.append(iou(prob, gt))
                bfs.append(boundary_f_score(prob, gt))
            if ious:
                scores[f"{name}_iou"] = float(np.mean(ious))
                scores[f"{name}_bf"] = float(np.mean(bfs))
        model.train()
        per_source = [v for k, v in scores.items() if k.endswith("_iou")]
        return {"val_iou": float(np.mean(per_source)), **scores}


class MattingTask:
    """Trimaps come from the ED layer itself, with per-sample random rates, so the net sees the
    band widths the service's trimap graph produces: on the GT mask, and (with
    `trimap_segmenter`) on a share of batches on the segmenter's own prediction, whose edges
    sit where the service's will, not on the true boundary."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.model = build_matting(config.matting)
        # Validation trimaps use the exported rates; training passes per-sample ones.
        self.ed = build_trimap(TrimapConfig(
            max_radius=max(8, int(config.size * config.trimap_rate_range[1]) + 2)))
        self.segmenter = None
        if config.trimap_segmenter is not None:
            net, _, _ = load_trained(config.trimap_segmenter, build_segmenter, SegmenterConfig)
            self.segmenter = net.eval().requires_grad_(False).to(config.device)

    def dataset(self):
        from ..data import MattingDataset

        paths = _data_paths(self.config)
        paths.pop("ccp_root", None)
        paths.pop("real_roots", None)
        return MattingDataset("train", crop=self.config.size, seed=self.config.seed,
                              length=self.config.epoch_size, hole_share=self.config.hole_share,
                              studio_share=self.config.studio_share, **paths)

    def make_trimap(
        self, gt_alpha: torch.Tensor, image: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self._marked(self._ed_trimap(gt_alpha, image), image)

    def _marked(self, trimap: torch.Tensor, image: torch.Tensor | None,
                share: float | None = None) -> torch.Tensor:
        """The backdrop step on `share` of the samples (default: --backdrop-share)."""
        if image is None or self.config.backdrop_distance <= 0:
            return trimap
        share = self.config.backdrop_share if share is None else share
        return mark_backdrop(image, trimap, self.config.backdrop_distance, share,
                             self.config.matting)

    def _ed_trimap(self, gt_alpha: torch.Tensor, image: torch.Tensor | None) -> torch.Tensor:
        low, high = self.config.trimap_rate_range
        n = gt_alpha.shape[0]
        erode_rate = torch.empty(n).uniform_(low, high).to(gt_alpha)
        dilate_rate = torch.empty(n).uniform_(low, high).to(gt_alpha)
        if image is not None and self.segmenter is not None \
                and random.random() < self.config.segmenter_trimap_share:
            # The service's trimap exactly: its errors are what the net must learn to live with,
            # so no GT translucency is written into it.
            return self.ed(self.segmenter_probability(image), erode_rate, dilate_rate)
        # Also perturb the mask threshold a little: segmenter masks are never exactly GT.
        mask = (gt_alpha > random.uniform(0.2, 0.8)).to(gt_alpha.dtype)
        trimap = self.ed(mask, erode_rate, dilate_rate)
        # Translucent pixels must never be marked as known.
        unknown = (gt_alpha > 0.02) & (gt_alpha < 0.98)
        return torch.where(unknown, torch.full_like(trimap, 0.5), trimap)

    @torch.no_grad()
    def segmenter_probability(self, image: torch.Tensor) -> torch.Tensor:
        """The segmenter's foreground probability for a normalised batch (both nets take
        ImageNet-normalised RGB); the ED layer thresholds it."""
        return torch.sigmoid(self.segmenter(image).float())

    def inputs(self, batch: dict) -> torch.Tensor:
        return torch.cat([batch["image"], self.make_trimap(batch["alpha"], batch["image"])], dim=1)

    def loss(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        gt = batch["alpha"]
        plain = self._ed_trimap(gt, batch["image"])
        trimap = self._marked(plain, batch["image"])
        raw = model.forward_raw(torch.cat([batch["image"], trimap], dim=1)).float()
        weight = (trimap == 0.5).to(raw.dtype)
        # The marked pixels are few beside the band; their weight makes them count.
        weight = weight + (self.config.backdrop_weight - 1.0) * (trimap != plain).to(raw.dtype)
        loss, parts = matting_loss(raw, gt, batch["fg"], batch["bg"], weight)
        return loss, {"loss": loss.item(), **parts}

    @torch.no_grad()
    def validate(self, model: nn.Module, limit: int | None = 60) -> dict[str, float]:
        try:
            from ..data import evaluation_sets

            sets = evaluation_sets(
                **({"cache": self.config.data_cache} if self.config.data_cache else {})
            )
        except Exception:  # noqa: BLE001 - validation is optional while data is being built
            return {}
        cfg = self.config.matting
        model.eval()
        out: dict[str, float] = {}
        torch.manual_seed(0)
        random.seed(0)
        device = self.config.device
        for name in ("studio", "cluttered"):
            scores: dict[str, list[float]] = {}
            for _, image, gt in sets.get(name, [])[:limit]:
                x, (nh, nw) = letterbox_tensor(image, 512, cfg.size_multiple, cfg.mean, cfg.std)
                x = x.to(device)
                gt_t = torch.from_numpy(gt)[None, None]
                gt_t = F.interpolate(gt_t, size=(nh, nw), mode="bilinear", align_corners=False)
                gt_t = F.pad(gt_t, (0, x.shape[3] - nw, 0, x.shape[2] - nh)).to(device)
                # The first figure picks best.pt: the service's case when there is a segmenter.
                trimaps = {}
                if self.segmenter is not None:
                    # As the service would hand it over, backdrop step included.
                    trimaps["mad_segmenter_trimap"] = self._marked(
                        self.ed(self.segmenter_probability(x)), x, share=1.0)
                trimaps["mad"] = self.ed((gt_t > 0.5).float())
                for key, trimap in trimaps.items():
                    alpha = model(torch.cat([x, trimap], dim=1)).cpu()
                    scores.setdefault(key, []).append(
                        mad(alpha[0, 0, :nh, :nw].numpy(), gt_t[0, 0, :nh, :nw].cpu().numpy()))
            for key, values in scores.items():
                out[f"{name}_{key}"] = float(np.mean(values))
        model.train()
        return out


def mark_backdrop(image: torch.Tensor, trimap: torch.Tensor, distance: float, share: float,
                  cfg) -> torch.Tensor:
    """The service's backdrop step on a share of the samples: known-foreground pixels of the
    backdrop's colour become unknown. `image` is the normalised batch [N,3,H,W]; the rule itself
    is the service's (service/pipeline/backdrop.py), run on the 8-bit image."""
    from service.pipeline.backdrop import backdrop_coloured
    from service.pipeline.trimap import UNKNOWN

    mean = torch.tensor(cfg.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, dtype=torch.float32).view(1, 3, 1, 1)
    rgb = ((image.detach().float().cpu() * std + mean).clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    rgb = rgb.permute(0, 2, 3, 1).numpy()
    out = trimap.clone()
    for k in range(len(out)):
        if random.random() >= share:
            continue
        keyed = backdrop_coloured(rgb[k], out[k, 0].float().cpu().numpy(), distance)
        if keyed is not None:
            out[k, 0][torch.from_numpy(keyed).to(out.device)] = UNKNOWN
    return out


def build_task(config: TrainConfig):
    return {"seg": SegmentationTask, "matting": MattingTask}[config.task](config)
