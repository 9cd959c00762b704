"""Training settings, their defaults (the bundled packs' protocol) and their sane limits.

Kept free of torch: ``hqnn-desktop train`` takes its option defaults and the
Training tab its initial values from these classes, so the three can never
disagree, and neither ``--help`` nor the window has to load torch to show them.
:mod:`core.train` re-exports both classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .augment import AugmentConfig

#: The backbones a run can start from (:data:`core.backbones.BACKBONES` builds them), described
#: here so that ``--help`` and the Training tab can offer them without loading torch.
BACKBONE_NOTES = {
    "efficientnet_lite0": "EfficientNet-Lite0, 3.4 million weights; ImageNet weights included",
    "efficientnet_lite2": "EfficientNet-Lite2, 4.8 million weights; ImageNet weights included",
    "resnet18": "ResNet-18, 11.2 million weights; ImageNet weights from a file "
                "(HQNN_RESNET18_WEIGHTS) or torchvision's download folder",
    "resnet50": "ResNet-50 (the paper's), 23.5 million weights; ImageNet weights from a file "
                "(HQNN_RESNET50_WEIGHTS) or torchvision's download folder",
}
BACKBONE_NAMES = tuple(BACKBONE_NOTES)
#: The circuit is simulated exactly, as a 2^n x 2^n matrix per layer: every qubit more
#: doubles time and quadruples memory (12 qubits: ~0.3 GB, 16 qubits: ~70 GB).
MAX_QUBITS = 12
#: The CRX ring entangles each qubit with the next one, so the circuit needs two.
MIN_QUBITS = 2
#: Circuit layers: each adds its gates to the simulated circuit and to a hardware run's depth (and its
#: noise); the bundled packs use 1. The Training tab and the command line both allow 1 to this.
MAX_LAYERS = 6
#: Smaller images vanish in the backbone's five halvings; larger ones cost memory for no gain.
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 1024
#: The window on the stained cell (:mod:`core.cell_crop`), as a fraction of the image's shorter side:
#: below a tenth not even a small lymphocyte fits at the magnifications these datasets use.
MIN_CELL_WINDOW, MAX_CELL_WINDOW = 0.1, 1.0


def _default_augment() -> AugmentConfig:
    """The augmentation defaults; imported when a run is configured, since that module needs torch."""
    from .augment import AugmentConfig

    return AugmentConfig()


@dataclass
class AdaptConfig:
    """Backbone adaptation settings (defaults: the bundled packs' recipe)."""

    backbone: str = "efficientnet_lite0"
    pretrained: bool = True
    input_size: int = 224
    bottleneck: int = 8
    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    seed: int = 0
    mixup: float = 0.0
    ema_decay: float = 0.0
    augment: AugmentConfig = field(default_factory=_default_augment)
    # An extractor weights file (a pack's backbone.safetensors) to adapt instead of the
    # ImageNet weights: a backbone that already knows blood cells from another dataset.
    start_from: str | None = None


@dataclass
class HeadConfig:
    """Head training settings, identical for the three models (defaults: the protocol chosen for
    the bundled packs, ``training/results/pbc8.json`` 'chosen')."""

    n_qubits: int = 8
    layers: int = 1
    epochs: int = 10
    batch_size: int = 256
    lr: float = 0.01
    weight_decay: float = 1e-4
    contrastive_weight: float = 0.0
    temperature: float = 0.2
    feature_dropout: float = 0.2
    label_smoothing: float = 0.1
    warmup_epochs: int = 10
    freeze_bottleneck: bool = True
    seed: int = 0
