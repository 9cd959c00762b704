"""Batched, seeded image augmentation on whatever device the batch lives on.

Cells in a smear have no preferred orientation, so every training batch gets
random rotations, flips, small shifts and scale changes (one affine warp per
image through ``grid_sample``) and mild brightness/contrast/saturation jitter.
An optional per-channel gain (``stain_jitter``) imitates the colour differences
between smears stained and photographed on different days.
Working on whole batches keeps a GPU busy and avoids per-image Python work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transformations (fill: 'reflect' or 'black' outside the image);
    ``stain_jitter`` is the largest relative gain of each colour channel on its own."""

    max_rotation_deg: float = 180.0
    max_shift_px: float = 16.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    jitter: float = 0.1
    fill: str = "reflect"
    stain_jitter: float = 0.0


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Augment a uint8 NHWC batch; returns float NHWC in [0, 255] on the same device."""
    b, h, w, _ = x.shape
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device="cpu").to(dev)

    img = x.permute(0, 3, 1, 2).float()
    theta_rad = (rand(b) * 2 - 1) * math.radians(cfg.max_rotation_deg)
    scale = cfg.scale_range[0] + rand(b) * (cfg.scale_range[1] - cfg.scale_range[0])
    flip = torch.where(rand(b) < 0.5, -1.0, 1.0)
    shift = (rand(b, 2) * 2 - 1) * (2.0 * cfg.max_shift_px / torch.tensor([w, h], device=dev))
    cos, sin = torch.cos(theta_rad) / scale, torch.sin(theta_rad) / scale
    affine = torch.stack([
        torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
        torch.stack([sin * flip, cos, shift[:, 1]], dim=1),
    ], dim=1)
    grid = F.affine_grid(affine, list(img.shape), align_corners=False)
    padding = "reflection" if cfg.fill == "reflect" else "zeros"
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode=padding, align_corners=False)

    if cfg.jitter > 0:
        j = cfg.jitter
        brightness = 1 + (rand(b, 1, 1, 1) * 2 - 1) * j
        contrast = 1 + (rand(b, 1, 1, 1) * 2 - 1) * j
        saturation = 1 + (rand(b, 1, 1, 1) * 2 - 1) * j
        img = img * brightness
        mean = img.mean(dim=(1, 2, 3), keepdim=True)
        img = (img - mean) * contrast + mean
        gray = (img * torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1)).sum(1, keepdim=True)
        img = (img - gray) * saturation + gray
    if cfg.stain_jitter > 0:
        img = img * (1 + (rand(b, 3, 1, 1) * 2 - 1) * cfg.stain_jitter)
    return img.clamp(0, 255).permute(0, 2, 3, 1)
