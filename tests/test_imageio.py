"""Decoding of awkward files: every usable image becomes RGB, every unusable one a clear message."""

from __future__ import annotations

import io
import os
import struct

import numpy as np
import pytest
from PIL import Image

from hqnn_desktop.core.imageio import ImageError, exif_orientation, load_model_input, load_rgb
from hqnn_desktop.core.predict import iter_image_paths


def _save(im: Image.Image, path, **kw):
    im.save(path, **kw)
    return path


def _two_halves(size: tuple[int, int], left=(200, 30, 30), right=(30, 30, 200)) -> Image.Image:
    """A picture with something in it (a blank one is refused), ``size`` big enough to show a cell."""
    im = Image.new("RGB", size, left)
    im.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return im


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I;16", "1"])
def test_modes_become_rgb(tmp_path, mode):
    im = _two_halves((40, 20), (200, 200, 200), (30, 30, 30)).convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    out = load_rgb(_save(im, tmp_path / f"x.{fmt.lower()}", format=fmt))
    assert out.mode == "RGB" and out.size == (40, 20)


def test_alpha_is_composited_on_white(tmp_path):
    im = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    im.paste((90, 20, 120, 255), (8, 8, 24, 24))
    assert load_rgb(_save(im, tmp_path / "a.png")).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = _save(_two_halves((60, 20)), tmp_path / "r.jpg", exif=exif)
    assert load_rgb(path).size == (20, 60)


def _png_with_exif_after_the_pixels(path, orientation: int):
    """A PNG whose eXIf chunk follows the image data (allowed by the PNG specification)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    _two_halves((60, 20)).save(buffer, format="PNG", exif=exif)
    data, chunks, at = buffer.getvalue(), [], 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.append((kind, data[at:at + length + 12]))
        at += length + 12
    order = [c for k, c in chunks if k not in (b"eXIf", b"IEND")] + [c for k, c in chunks if k == b"eXIf"]
    path.write_bytes(data[:8] + b"".join(order) + chunks[-1][1])
    return path


def test_the_orientation_a_viewer_must_apply_is_the_one_the_models_see(tmp_path):
    late = _png_with_exif_after_the_pixels(tmp_path / "late.png", 6)
    assert exif_orientation(late) == 6 and load_rgb(late).size == (20, 60)
    plain = _save(_two_halves((60, 20)), tmp_path / "plain.png")
    assert exif_orientation(plain) == 1 and load_rgb(plain).size == (60, 20)
    (tmp_path / "junk.png").write_bytes(b"not a picture")
    assert exif_orientation(tmp_path / "junk.png") == 1


def test_multipage_tiff_first_page(tmp_path):
    pages = [_two_halves((32, 32), c) for c in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "m.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    first = load_rgb(path)
    assert first.getpixel((0, 0)) == (255, 0, 0) and first.info["frames"] == 2
    assert load_rgb(_save(_two_halves((32, 32)), tmp_path / "one.png")).info["frames"] == 1


def test_a_small_picture_is_resized(tmp_path):
    arr = load_model_input(_save(_two_halves((20, 16)), tmp_path / "p.png"), 32)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8


@pytest.mark.parametrize("picture,reason", [
    (Image.new("RGB", (1, 1), (90, 20, 120)), r"^The picture is only 1x1 pixels, too small to show a cell"),
    (_two_halves((15, 400)), r"^The picture is only 15x400 pixels"),
    (Image.new("RGB", (360, 363)), r"^The picture is one colour all over \(a blank frame\)"),
    (Image.new("L", (360, 363), 255), r"one colour all over"),
])
def test_pictures_that_cannot_show_a_cell_are_refused_in_words(tmp_path, picture, reason):
    with pytest.raises(ImageError, match=reason):
        load_rgb(_save(picture, tmp_path / "p.png"))


@pytest.mark.parametrize("content,needle", [
    (b"", "empty"),
    (b"<html><body>404</body></html>", "not an image"),
])
def test_bad_content(tmp_path, content, needle):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=needle):
        load_rgb(p)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    p = tmp_path / "t.jpg"
    p.write_bytes(buf.getvalue()[:600])
    with pytest.raises(ImageError, match="truncated|damaged|decoded"):
        load_rgb(p)


def test_decompression_bomb_refused(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(p)
    with pytest.raises(ImageError, match="too large"):
        load_rgb(p)


def test_folder_and_missing_and_dangling(tmp_path):
    d = tmp_path / "looks.jpg"
    d.mkdir()
    with pytest.raises(ImageError, match="folder"):
        load_rgb(d)
    with pytest.raises(ImageError, match="does not exist"):
        load_rgb(tmp_path / "nope.png")
    link = tmp_path / "dangling.png"
    os.symlink(tmp_path / "gone.png", link)
    with pytest.raises(ImageError, match="does not exist"):
        load_rgb(link)


def test_folder_walk_skips_hidden_and_survives_loops(tmp_path):
    (tmp_path / "a").mkdir()
    _save(Image.new("RGB", (4, 4)), tmp_path / "a" / "x y é.png")
    (tmp_path / "a" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "a" / ".DS_1.jpg").write_bytes(b"junk")
    (tmp_path / "a" / "notes.txt").write_text("hi")
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    found = list(iter_image_paths([tmp_path]))
    assert [os.path.basename(p) for p in found] == ["x y é.png"]


def _picture8(colours: int) -> np.ndarray:
    """An 8-bit picture with something in it, dark and bright, of ``colours`` samples a pixel."""
    ramp = np.linspace(20, 250, 48 * 64).reshape(48, 64)
    noisy = np.clip(ramp[::-1] + np.random.default_rng(7).normal(0, 8, ramp.shape), 0, 255)
    planes = (ramp, noisy, ramp.T.reshape(ramp.shape))[:colours]
    return np.round(np.stack(planes, -1)).astype(np.uint8)


@pytest.mark.parametrize("colours", [1, 3])
@pytest.mark.parametrize("dtype,scale", [
    (np.float32, 1.0), (np.float16, 1.0),  # ImageJ's "32-bit" copy of an 8-bit picture: 0-255
    (np.float32, 1 / 255), (np.float16, 1 / 255),  # fractions of full brightness: 0-1
    (np.float32, 4095 / 255),  # a 12-bit camera's picture as floats
    (np.float32, 257.0),  # a 16-bit picture as floats: 0-65535
])
def test_float_tiffs_read_like_their_8bit_copies(tmp_path, colours, dtype, scale):
    """Float TIFFs read like the picture they were converted from, whether they hold fractions
    or 8-, 12- or 16-bit intensities: the same classification as the 8-bit copy."""
    import tifffile

    picture8 = _picture8(colours)
    expected = np.asarray(Image.fromarray(picture8[..., 0] if colours == 1 else picture8).convert("RGB"), int)
    values = (picture8 * scale).astype(dtype)
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, values[..., 0] if colours == 1 else values,
                     photometric="minisblack" if colours == 1 else "rgb")
    got = np.asarray(load_rgb(path), int)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1


def test_imagej_float_copy_of_an_8bit_picture_reads_like_it(tmp_path):
    """Pillow (mode F) writes the float TIFFs ImageJ does; a hot pixel does not darken the rest."""
    grey8 = _picture8(1)[..., 0]
    values = grey8.astype(np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "imagej.tif")
    values[0, 0] = 4000.0  # one saturated pixel, far above 255
    Image.fromarray(values, mode="F").save(tmp_path / "hot.tif")
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "imagej.tif"))[..., 0], grey8)
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "hot.tif"))[1:, :, 0], grey8[1:])


def test_float_values_without_an_agreed_range_are_stretched(tmp_path):
    """Negative values (a background subtracted) have no agreed meaning: their used range is stretched."""
    grey8 = _picture8(1)[..., 0]
    values = grey8.astype(np.float32) - 100
    Image.fromarray(values, mode="F").save(tmp_path / "negative.tif")
    got = np.asarray(load_rgb(tmp_path / "negative.tif"))[..., 0]
    assert got.min() == 0 and got.max() >= 254
