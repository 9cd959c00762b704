"""Backbones by name: the offered names, offline ImageNet weights, and wrong weight files refused."""

from __future__ import annotations

import pytest
import torch

from hqnn_desktop.core.backbones import (
    BACKBONES,
    BackboneWeightsError,
    _lite_weights,
    build_backbone,
)
from hqnn_desktop.core.configs import BACKBONE_NAMES, BACKBONE_NOTES


def test_the_names_offered_are_the_backbones_that_can_be_built() -> None:
    assert set(BACKBONE_NAMES) == set(BACKBONES)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite2"])
def test_efficientnet_lite_loads_its_imagenet_weights_offline(name: str) -> None:
    torch.manual_seed(0)
    pretrained = build_backbone(name, pretrained=True).eval()
    random = build_backbone(name, pretrained=False).eval()
    stem = "net._conv_stem.weight"
    weights = torch.load(_lite_weights(name.removeprefix("efficientnet_")), map_location="cpu", weights_only=True)
    assert torch.equal(pretrained.state_dict()[stem], weights["_conv_stem.weight"])
    assert not torch.equal(random.state_dict()[stem], weights["_conv_stem.weight"])
    image = torch.rand(2, 3, 160, 160) * 2 - 1
    with torch.no_grad():
        features = pretrained(image)
    assert features.shape == (2, BACKBONES[name].feature_dim)
    assert torch.isfinite(features).all()


def test_weights_of_another_backbone_are_refused_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HQNN_EFFICIENTNET_LITE2_WEIGHTS", _lite_weights("lite0"))
    with pytest.raises(BackboneWeightsError, match="does not hold EfficientNet-Lite2 weights"):
        build_backbone("efficientnet_lite2", pretrained=True)


def test_a_missing_weights_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HQNN_EFFICIENTNET_LITE2_WEIGHTS", str(tmp_path / "gone.pth"))
    with pytest.raises(BackboneWeightsError, match="HQNN_EFFICIENTNET_LITE2_WEIGHTS points to a missing file"):
        build_backbone("efficientnet_lite2", pretrained=True)


def test_the_stated_sizes_are_the_real_ones() -> None:
    for name, note in BACKBONE_NOTES.items():
        millions = sum(p.numel() for p in build_backbone(name, pretrained=False).parameters()) / 1e6
        stated = float(note.split(" million")[0].split()[-1])
        assert abs(millions - stated) < 0.1, (name, millions)
