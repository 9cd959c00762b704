"""The window on the stained white cell: found among red cells and platelets, used everywhere a
pack that was trained with it turns a picture into model input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hqnn_desktop.core.build import AdaptConfig, HeadConfig, PackRecipe, train_pack
from hqnn_desktop.core.cell_crop import CellCrop
from hqnn_desktop.core.datasets import scan_class_folders
from hqnn_desktop.core.imageio import load_model_input, load_rgb
from hqnn_desktop.core.packs import load_pack
from hqnn_desktop.core.predict import Engine

from .conftest import SAMPLES


def smear_field(seed: int, size=(320, 240)) -> tuple[Image.Image, tuple[int, int, int]]:
    """A field like Blood Cell Images: pale background, many pink red cells, a few purple
    platelets and one large purple white cell; returns it and the white cell (x, y, radius)."""
    rng = np.random.default_rng(seed)
    w, h = size
    im = Image.new("RGB", size, (226, 222, 218))
    draw = ImageDraw.Draw(im)
    for _ in range(40):
        x, y, r = rng.integers(0, w), rng.integers(0, h), rng.integers(14, 20)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(214, 158, 160), outline=(190, 130, 135))
    for _ in range(6):
        x, y = rng.integers(0, w), rng.integers(0, h)
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(110, 70, 175))
    r = int(rng.integers(24, 36))
    x, y = int(rng.integers(r, w - r)), int(rng.integers(r, h - r))
    draw.ellipse([x - r, y - r, x + r, y + r], fill=(200, 170, 215))  # cytoplasm
    draw.ellipse([x - r // 2 - 6, y - r // 2, x + r // 2, y + r // 2 + 4], fill=(95, 50, 160))  # nucleus
    return im, (x, y, r)


@pytest.mark.parametrize("seed", range(8))
def test_the_window_holds_the_white_cell_not_a_platelet(seed):
    im, (x, y, r) = smear_field(seed)
    left, top, right, bottom = CellCrop(0.6).box(im)
    assert right - left == bottom - top == 144  # 0.6 of the shorter side
    assert 0 <= left and 0 <= top and right <= 320 and bottom <= 240  # shifted inside, never padded
    assert left <= x - r // 2 and x + r // 2 <= right and top <= y - r // 2 and y + r // 2 <= bottom


def test_the_window_follows_the_picture_size_and_black_fill():
    im, (x, y, _) = smear_field(3)
    big = im.resize((1280, 960), Image.BILINEAR)
    small_box, big_box = CellCrop(0.5).box(im), CellCrop(0.5).box(big)
    assert big_box[2] - big_box[0] == 480
    assert np.abs(np.asarray(big_box) - 4 * np.asarray(small_box)).max() <= 12
    rotated = im.rotate(20, fillcolor=(0, 0, 0))  # as the dataset's augmentations fill corners
    left, top, right, bottom = CellCrop(0.6).box(rotated)
    cx, cy = 160 + (x - 160) * np.cos(np.radians(20)) + (y - 120) * np.sin(np.radians(20)), \
        120 - (x - 160) * np.sin(np.radians(20)) + (y - 120) * np.cos(np.radians(20))
    assert left < cx < right and top < cy < bottom


def test_a_bluish_colour_cast_does_not_move_the_window():
    im, (x, y, r) = smear_field(5)
    a = np.asarray(im, dtype=np.int16)
    a[..., 2] += 40  # another microscope's white balance: everything bluer
    left, top, right, bottom = CellCrop(0.6).box(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)))
    assert left <= x - r // 2 and x + r // 2 <= right and top <= y - r // 2 and y + r // 2 <= bottom
    assert CellCrop(0.6).box(Image.new("RGB", (300, 200), (150, 160, 230))) == (90, 40, 210, 160)


@pytest.mark.parametrize("seed", range(6))
def test_in_a_grey_picture_the_window_holds_the_darkest_cell_not_the_black_fill(seed):
    im, (x, y, r) = smear_field(seed)
    grey = im.rotate(15, fillcolor=(0, 0, 0)).convert("L")  # a monochrome camera's rotated field
    turn = np.radians(15)
    cx = 160 + (x - 160) * np.cos(turn) + (y - 120) * np.sin(turn)
    cy = 120 - (x - 160) * np.sin(turn) + (y - 120) * np.cos(turn)
    left, top, right, bottom = CellCrop(0.6).box(grey.convert("RGB"))
    assert left + r // 2 <= cx <= right - r // 2 and top + r // 2 <= cy <= bottom - r // 2


def test_a_long_strip_is_mapped_small_and_its_window_stays_inside():
    strip, (_, y, _) = smear_field(3, size=(200, 60000))
    box = CellCrop(0.6).box(strip)
    assert box[2] - box[0] == box[3] - box[1] == 120
    assert 0 <= box[0] and box[2] <= 200 and box[1] <= y <= box[3]  # still found, at a coarser map


def test_a_picture_without_stain_keeps_its_centre():
    assert CellCrop(0.6).box(Image.new("RGB", (300, 200), (230, 230, 230))) == (90, 40, 210, 160)
    assert CellCrop(1.0).box(Image.new("RGB", (50, 80), (0, 0, 0))) == (0, 15, 50, 65)


def test_the_window_on_a_real_smear_field_is_more_stained_than_the_field():
    for path in sorted((SAMPLES / "bci4").glob("*/*.jpeg")):
        field = np.asarray(load_rgb(path), dtype=np.float32)
        window = np.asarray(CellCrop(0.6).apply(load_rgb(path)), dtype=np.float32)

        def stain(a):
            return np.clip(a[..., 2] - a[..., 0], 0, None).mean()

        assert stain(window) > 1.5 * stain(field), path


@pytest.mark.parametrize("entry,reason", [
    ({"kind": "nucleus", "side": 0.6}, "not one this version knows"),
    ({"kind": "stained_cell"}, "no numeric 'side'"),
    ({"kind": "stained_cell", "side": True}, "no numeric 'side'"),
    ({"kind": "stained_cell", "side": 0.01}, "between 0.1 and 1.0"),
    ("stained_cell", "not one this version knows"),
    (None, "not one this version knows"),
    ({"kind": "stained_cell", "side": 0.6, "margin": 4}, "settings this version does not know: margin"),
])
def test_a_card_step_that_cannot_be_followed_is_explained(entry, reason):
    with pytest.raises(ValueError, match=reason):
        CellCrop.from_card(entry)


def test_a_pack_trained_with_a_cell_window_uses_it_in_every_prediction(tiny_dataset, tmp_path):
    train, val = tiny_dataset
    recipe = PackRecipe(train_dir=str(train), val_dir=str(val), name="cells", cell_window=0.5,
                        adapt=AdaptConfig(input_size=64), heads=HeadConfig(n_qubits=4, epochs=30, lr=0.03))
    pack = load_pack(train_pack(recipe, tmp_path / "cells"))
    card = json.loads((tmp_path / "cells" / "card.json").read_text())
    assert card["preprocessing"]["crop"] == {"kind": "stained_cell", "side": 0.5}
    assert pack.crop == CellCrop(0.5)
    assert card["metrics"]["validation"]["models"]["hqnn"]["accuracy"] >= 0.8  # chance is 1/3

    paths = [str(p) for p in scan_class_folders(val).paths[::4]]
    engine = Engine(pack)
    cropped = np.stack([load_model_input(p, 64, CellCrop(0.5)) for p in paths])
    whole = np.stack([load_model_input(p, 64) for p in paths])
    expected = engine.run_batch(cropped)[0]["hqnn"]
    got = np.stack([r.proba["hqnn"] for r in engine.classify(paths)])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(engine.run_batch(whole)[0]["hqnn"], expected, atol=1e-3)
    np.testing.assert_array_equal(pack.model_input(paths[0]), cropped[0])


def test_training_tab_passes_the_cell_window_only_when_asked(qtbot, tiny_dataset):
    from hqnn_desktop.gui.training_tab import TrainingTab

    tab = TrainingTab()
    qtbot.addWidget(tab)
    tab.train_dir.setText(str(tiny_dataset[0]))
    assert tab.recipe().cell_window is None and not tab.cell_window.isEnabled()
    tab.cell_crop.setChecked(True)
    tab.cell_window.setValue(0.55)
    assert tab.cell_window.isEnabled() and tab.recipe().cell_window == pytest.approx(0.55)
    assert "whole smear fields" in tab.cell_crop.toolTip()


def test_review_keeps_the_window_and_its_gallery_shows_the_cell(qtbot):
    from PySide6.QtCore import Qt

    from hqnn_desktop.core.inputs import ImageResult
    from hqnn_desktop.core.review import Review
    from hqnn_desktop.gui.review_gallery import THUMB, GalleryModel
    from hqnn_desktop.gui.thumbnails import read_thumbnail

    labels = ["eosinophil", "lymphocyte", "monocyte", "neutrophil"]
    field, plain = sorted((SAMPLES / "bci4" / "eosinophil").glob("*.jpeg"))[:2]
    window = (0.5, 0.0, 0.95, 0.6)  # a 144-pixel square of a 320x240 field
    proba = {"hqnn": np.array([0.9, 0.05, 0.03, 0.02])}
    review = Review.from_results([ImageResult(str(field), proba=proba, window=window),
                                  ImageResult(str(plain), proba=proba)], labels, ("hqnn",), "fields")
    again = Review.load(review.file)
    assert {c.path: c.window for c in again.cells} == {str(field): window, str(plain): None}

    gallery = GalleryModel()
    gallery.show_group(again, "hqnn", "eosinophil")
    for row in range(2):
        gallery.data(gallery.index(row), Qt.DecorationRole)  # asks for the thumbnails
    gallery.thumbnails.wait()
    qtbot.waitUntil(lambda: all(gallery.data(gallery.index(r), Qt.DecorationRole) is not None for r in range(2)))
    sizes = {c.path: gallery.data(gallery.index(r), Qt.DecorationRole).size() for r, c in enumerate(gallery.cells)}
    assert (sizes[str(plain)].width(), sizes[str(plain)].height()) == (THUMB, 96)  # the whole field
    cell = sizes[str(field)]
    assert abs(cell.width() - THUMB) <= 2 and abs(cell.height() - THUMB) <= 2  # the window, at full size
    assert read_thumbnail(str(field), 76, window).width() in range(74, 79)  # the report's thumbnails


@pytest.mark.parametrize("suffix", [".png", ".webp", ".jpg"])
def test_a_thumbnail_shows_the_window_of_the_upright_picture_whatever_the_format(qtbot, tmp_path, suffix):
    """Qt leaves the orientation tag of PNG and WebP files unapplied; the models (Pillow) apply it."""
    from hqnn_desktop.gui.thumbnails import read_thumbnail_image

    stored = Image.new("RGB", (320, 240), (240, 240, 240))
    stored.paste((200, 0, 0), (0, 0, 160, 240))  # left half red: the top half once turned upright
    stored.paste((0, 0, 200), (160, 0, 320, 240))
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to show
    path = tmp_path / f"tagged{suffix}"
    stored.save(path, exif=exif, quality=95)
    upright = load_rgb(path)
    assert upright.size == (240, 320)
    top = (0.0, 0.0, 1.0, 0.75)  # a 240-pixel square at the top of the upright picture: red
    image = read_thumbnail_image(str(path), 64, top)
    assert abs(image.width() - image.height()) <= 1 and image.width() >= 62
    middle = image.pixelColor(image.width() // 2, image.height() // 4)
    assert middle.red() > 150 and middle.blue() < 60, suffix
    whole = read_thumbnail_image(str(path), 64)
    assert (whole.width(), whole.height()) == (48, 64)


def test_a_damaged_window_in_a_review_file_only_loses_the_window():
    from hqnn_desktop.core.inputs import ImageResult
    from hqnn_desktop.core.review import Review

    field = next((SAMPLES / "bci4" / "monocyte").glob("*.jpeg"))
    review = Review.from_results([ImageResult(str(field), proba={"hqnn": np.array([0.1, 0.1, 0.7, 0.1])},
                                              window=(0.1, 0.1, 0.7, 0.9))],
                                 ["eosinophil", "lymphocyte", "monocyte", "neutrophil"], ("hqnn",), "fields")
    data = json.loads(review.file.read_text())
    data["cells"][0]["window"] = ["left", 0, 2, 1]
    review.file.write_text(json.dumps(data))
    assert Review.load(review.file).cells[0].window is None
