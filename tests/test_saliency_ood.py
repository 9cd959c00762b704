"""Grad-CAM maps and the "unlike training data" flag on the bundled packs and real samples."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hqnn_desktop.core.imageio import load_model_input
from hqnn_desktop.core.packs import load_pack
from hqnn_desktop.core.predict import Engine, iter_image_paths
from hqnn_desktop.core.saliency import grad_cam

from .conftest import BUNDLED, SAMPLES

pytestmark = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")


@pytest.fixture(scope="module")
def pbc8():
    return load_pack(BUNDLED / "pbc8")


@pytest.mark.parametrize("kind", ["hqnn", "classical", "baseline"])
def test_grad_cam_highlights_the_centred_cell(pbc8, kind):
    image = load_model_input(next(SAMPLES.glob("pbc8/lymphocyte/*.jpg")), pbc8.input_size)
    cam, k = grad_cam(pbc8, image, kind)
    assert cam.shape == image.shape[:2] and cam.min() >= 0 and cam.max() == pytest.approx(1.0)
    assert pbc8.labels[k] == "lymphocyte"
    centre = cam[56:168, 56:168].mean()
    border = np.concatenate([cam[:28].ravel(), cam[-28:].ravel(), cam[:, :28].ravel(), cam[:, -28:].ravel()]).mean()
    assert centre > 3 * border  # PBC cells sit in the middle of the crop


def test_unlike_training_flag(pbc8, tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    Image.new("RGB", (200, 200), (40, 140, 40)).save(tmp_path / "green.png")
    results = list(Engine(pbc8).classify(list(iter_image_paths([SAMPLES / "pbc8", tmp_path]))))
    flagged = {r.path.rsplit("/", 1)[-1] for r in results if r.unlike_training}
    assert {"noise.png", "green.png"} <= flagged
    assert len(flagged - {"noise.png", "green.png"}) <= 1  # real cells: at most ~1 % expected
