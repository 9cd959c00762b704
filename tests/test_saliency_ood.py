"""Grad-CAM maps and the "unlike training data" flag on the bundled packs and real samples."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

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
    green = Image.new("RGB", (200, 200), (40, 140, 40))
    ImageDraw.Draw(green).ellipse([60, 60, 140, 140], fill=(20, 90, 20))  # a leaf's cell, not a blood cell
    green.save(tmp_path / "green.png")
    results = list(Engine(pbc8).classify(list(iter_image_paths([SAMPLES / "pbc8", tmp_path]))))
    flagged = {r.path.rsplit("/", 1)[-1] for r in results if r.unlike_training}
    assert {"noise.png", "green.png"} <= flagged
    assert len(flagged - {"noise.png", "green.png"}) <= 1  # real cells: at most ~1 % expected


def test_ood_model_flags_shifted_and_collapsed_features_and_survives_a_pack_round_trip(tmp_path):
    from hqnn_desktop.core import ood
    from hqnn_desktop.core.packs import save_pack

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (3, 64)) + 10

    def cells(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        return centres[y] + rng.normal(0, 1, (n, 64)), y

    (f_train, y_train), (f_val, _), (f_new, _) = cells(600), cells(400), cells(400)
    model = ood.fit(f_train, y_train, f_val, max_directions=16)
    assert model.method == ood.BOTH and np.mean(model.flags(f_new)) < 0.05
    shifted = f_new + rng.normal(0, 3, f_new.shape)  # another stain: the same cells, blurred apart
    assert np.mean(model.flags(shifted)) > 0.9
    assert model.flags(0.05 * f_new[:50]).all()  # a flat picture: tiny features pointing nowhere usual

    pack = load_pack(BUNDLED / "bci4")
    card = {k: v for k, v in pack.card.items() if k not in ("files", "weights_dtype")}
    bundled = pack.ood
    assert bundled is not None and bundled.method == ood.BOTH
    saved = load_pack(save_pack(tmp_path / "copy", card, pack.extractor, pack.heads, ood=bundled))
    assert saved.ood.threshold == bundled.threshold and saved.card["ood"]["kind"] == ood.BOTH
    for name, tensor in bundled.tensors.items():
        np.testing.assert_array_equal(saved.ood.tensors[name], tensor)
    old_style = ood.fit(f_train, y_train, f_val, ood.COSINE)
    assert old_style.tensors.keys() == {"centroids"} and np.mean(old_style.flags(f_new)) < 0.05
    cosine_only = ood.OodModel(ood.COSINE, {"centroids": saved.ood.tensors["centroids"]}, 0.3)
    reloaded = load_pack(save_pack(tmp_path / "older", card, pack.extractor, pack.heads, ood=cosine_only))
    assert reloaded.ood.method == ood.COSINE and reloaded.ood.threshold == pytest.approx(0.3)


def test_training_features_with_nothing_outside_their_leading_directions_still_flag_foreign_ones():
    """A small pack's features can lie in a few directions (tiny inputs, dead features): nothing is
    left outside the modelled ones, which an earlier version turned into a scale of 0, a threshold
    of NaN and a flag that never fired."""
    import warnings

    from hqnn_desktop.core import ood

    rng = np.random.default_rng(1)
    directions, centres = rng.normal(0, 1, (5, 1280)), rng.normal(0, 3, (2, 5))

    def cells(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 2
        return 10 + (centres[y] + rng.normal(0, 1, (n, 5))) @ directions, y

    (f_train, y_train), (f_val, _), (f_new, _) = cells(40), cells(40), cells(200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero on the way
        model = ood.fit(f_train, y_train, f_val)
        assert np.isfinite(model.threshold) and model.tensors["residual_scale"][0] > 0
        assert np.mean(model.flags(f_new)) < 0.1
        assert model.flags(f_new + rng.normal(0, 1, f_new.shape)).all()
        assert model.flags(0.05 * f_new).all()
        one_each = ood.fit(f_train[:2], y_train[:2], f_val[:4])  # no spread within a class at all
        assert np.isfinite(one_each.threshold) and one_each.flags(0.05 * f_new).all()
    broken = {**model.tensors, "residual_scale": np.zeros(1, np.float32)}  # as the earlier version stored it
    assert ood.OodModel.from_pack(model.card_entry(), broken) is None
    assert ood.OodModel.from_pack({**model.card_entry(), "threshold": float("nan")}, model.tensors) is None
    assert ood.OodModel.from_pack(model.card_entry(), model.tensors) is not None


def test_cells_of_another_dataset_are_mostly_flagged(tmp_path):
    """PBC's single-cell crops shown to the Blood Cell Images pack (and the reverse)."""
    for pack_name, other in (("bci4", "pbc8"), ("pbc8", "bci4")):
        results = list(Engine(load_pack(BUNDLED / pack_name)).classify(list(iter_image_paths([SAMPLES / other]))))
        assert np.mean([r.unlike_training for r in results]) >= 0.5, pack_name


def test_a_picture_without_colour_is_flagged_for_a_pack_that_learnt_from_colour(pbc8, tmp_path):
    """A greyscale eosinophil looks ordinary to the feature statistics while the colour of its
    granules, what tells it from a neutrophil, is gone: flagged, with the reason, and said once."""
    from hqnn_desktop.core.results import no_colour_note, unlike_training_flag

    cell = next(SAMPLES.glob("pbc8/eosinophil/*.jpg"))
    Image.open(cell).convert("L").save(tmp_path / "grey.png")
    Image.open(cell).convert("L").convert("RGB").save(tmp_path / "grey_as_rgb.jpg")
    results = list(Engine(pbc8).classify([str(cell), str(tmp_path / "grey.png"), str(tmp_path / "grey_as_rgb.jpg")]))
    assert [r.no_colour for r in results] == [False, True, True]
    assert [unlike_training_flag(r) for r in results[1:]] == ["unlike training data (no colour)"] * 2
    assert no_colour_note(results) == (
        "2 pictures have no colour (for example grey.png); the models learnt to tell stains apart by colour, "
        "so their answers on these are unreliable.")
    assert pbc8.learnt_colour


def test_a_pack_that_learnt_from_pictures_without_colour_does_not_flag_them(tiny_dataset, tmp_path):
    from hqnn_desktop.core.build import PackRecipe, train_pack
    from hqnn_desktop.core.train import AdaptConfig, HeadConfig

    train = tmp_path / "grey_train"
    for src in tiny_dataset[0].rglob("*.png"):
        (train / src.parent.name).mkdir(parents=True, exist_ok=True)
        Image.open(src).convert("L").save(train / src.parent.name / src.name)
    recipe = PackRecipe(train_dir=str(train), val_dir=None, val_fraction=0.25, name="grey", models=("baseline",),
                        adapt=AdaptConfig(input_size=64, epochs=1), fine_tune=False,
                        heads=HeadConfig(n_qubits=2, layers=1, epochs=1, warmup_epochs=1), orientations=1)
    pack = load_pack(train_pack(recipe, tmp_path / "pack"))
    assert pack.card["data"]["colourless_share"] == 1.0 and not pack.learnt_colour
    (result,) = Engine(pack).classify([str(next(train.rglob("*.png")))])
    assert not result.no_colour
