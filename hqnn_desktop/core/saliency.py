"""Grad-CAM on the backbone a model reads (shared, or its own): where its prediction comes from.

The gradient of the chosen model's top class score flows back through its head
(the quantum circuit included: PennyLane's torch interface is differentiable) to
the backbone's last convolutional feature map; channels are weighted by their
mean gradient (Selvaraju et al. 2017). The score is the class's log-probability
(the class against the others), which gave usable maps where raw logits did not.
For the HQNN, <Z> = cos(angle) is flat at the poles, so for images whose code is
saturated the map can be empty (all zeros): callers say so rather than show noise.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .packs import Pack


def grad_cam(pack: Pack, image: np.ndarray, kind: str, target: int | None = None) -> tuple[np.ndarray, int]:
    """Heat map in [0, 1] of shape (H, W) for a uint8 HWC ``image``; returns (map, class index)."""
    extractor = pack.extractor_for(kind)  # a model fine-tuned end to end looks through its own
    head = pack.heads[kind]
    x = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True))[None]
    with torch.enable_grad():
        fmap = extractor.backbone.feature_map(extractor.normalize(x))
        fmap.retain_grad()
        logits = head(fmap.mean(dim=(2, 3)))
        k = int(logits.argmax(1)) if target is None else int(target)
        extractor.zero_grad(set_to_none=True)
        head.zero_grad(set_to_none=True)
        torch.log_softmax(logits, dim=1)[0, k].backward()  # the class against the others
    weights = fmap.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * fmap.detach()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=image.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    top = float(cam.max())
    return (cam / top).numpy() if top > 0 else cam.numpy(), k
