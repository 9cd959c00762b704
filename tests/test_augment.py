"""Training augmentation: the stain (per-channel gain) jitter changes colour balance within its range."""

from __future__ import annotations

import torch

from hqnn_desktop.core.augment import AugmentConfig, augment_batch

#: geometry and global jitter switched off so only the stain gain acts
STILL = {"max_rotation_deg": 0.0, "max_shift_px": 0.0, "scale_range": (1.0, 1.0), "jitter": 0.0}


def _grey_batch(n: int = 64, value: int = 128) -> torch.Tensor:
    return torch.full((n, 8, 8, 3), value, dtype=torch.uint8)


def test_stain_jitter_gives_each_image_its_own_colour_cast_within_range() -> None:
    out = augment_batch(_grey_batch(), AugmentConfig(**STILL, stain_jitter=0.2), torch.Generator().manual_seed(1))
    gains = out.mean(dim=(1, 2)) / 128.0  # (images, channels)
    assert gains.min() >= 0.8 - 1e-4 and gains.max() <= 1.2 + 1e-4
    channel_spread = gains.max(dim=1).values - gains.min(dim=1).values
    assert (channel_spread > 0.02).float().mean() > 0.8  # channels scaled independently: a colour cast
    assert gains.std(dim=0).min() > 0.05  # and it differs from image to image


def test_without_stain_jitter_grey_stays_grey() -> None:
    out = augment_batch(_grey_batch(), AugmentConfig(**STILL), torch.Generator().manual_seed(1))
    assert torch.allclose(out, torch.full_like(out, 128.0), atol=1e-3)
