"""A folder of awkward files through the whole pipeline (folder walk, engine, CSV) with the pbc8 pack.

Every usable image must come back classified by every model, every unusable
one with exactly one clear reason, the run must finish (a watchdog fails the
test instead of hanging it), and memory must stay bounded however many images
go through.
"""

from __future__ import annotations

import csv
import io
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import psutil
import pytest
from PIL import Image

from hqnn_desktop.cli import main
from hqnn_desktop.core.imageio import ImageError, load_rgb
from hqnn_desktop.core.inputs import ImageResult, iter_image_paths

from .conftest import BUNDLED, draw_cell

pytestmark = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")

MODELS = ("hqnn", "classical", "baseline")
WATCHDOG_S = 120
T = TypeVar("T")

#: What each corpus file must give: None = classified, else a pattern its error must match.
EXPECTED: dict[str, str | None] = {
    "plain.jpg": None,
    "one pixel.png": r"^The picture is only 1x1 pixels, too small to show a cell",
    "blank.png": r"^The picture is one colour all over \(a blank frame\)",
    "dark pixels.png": r"^The picture is one colour all over",
    "gray.png": None,
    "gray16.png": None,
    "rgb16.png": None,
    "palette.png": None,
    "palette transparent.png": None,
    "cmyk.jpg": None,
    "rgba.png": None,
    "la.png": None,
    "multipage.tif": None,
    "rotated.jpg": None,
    "a png named.jpg": None,
    "cellule é 血 球.png": None,
    "cell.jpg/inside.png": None,
    "empty.jpg": r"^The file is empty \(0 bytes\)\.$",
    "web page.jpg": r"text \(it looks like a web page",
    "notes.jpg": r"plain text, not an image",
    "truncated.jpg": r"truncated",
    "corrupt header.jpg": r"not an image that can be read",
    "no scan.jpg": r"damaged",
    "truncated.png": r"truncated",
    "bad header crc.png": r"not an image that can be read",
    "broken stream.png": r"damaged",
    "bomb.png": r"too large",
    "huge header.gif": r"too large",
    "dangling.jpg": r"does not exist",
    "loop.jpg": r"symbolic-link loop",
    "pipe.jpg": r"not an ordinary file",
}


def _with_watchdog(fn: Callable[[], T], timeout: float = WATCHDOG_S) -> T:
    """Run ``fn`` in a thread and fail (instead of hanging the suite) if it does not finish."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn).result(timeout=timeout)
    finally:
        pool.shutdown(wait=False)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(arr: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB or RGBA PNG of ``arr`` (height, width, 3 or 4), written by hand
    (Pillow cannot write one)."""
    height, width, channels = arr.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in arr.astype(">u2"))
    colour_type = {3: 2, 4: 6}[channels]
    return (b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


def _png16_rgb(width: int, height: int) -> bytes:
    """A 16-bit-per-channel RGB PNG using the whole range."""
    return _png16(np.arange(width * height * 3).reshape(height, width, 3) * 300 % 65536)


def _huge_gif_header() -> bytes:
    """A tiny GIF whose header claims 65535 x 65535 pixels."""
    return (b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00" + b",\x00\x00\x00\x00"
            + struct.pack("<HH", 65535, 65535) + b"\x00\x02\x02D\x01\x00;")


def _encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _zeroed(data: bytes, marker: bytes, n: int) -> bytes:
    """``data`` with ``n`` bytes zeroed from the first ``marker`` (a JPEG segment made unreadable)."""
    at = data.find(marker)
    return data[:at] + bytes(n) + data[at + n:]


def _halves(width: int = 60, height: int = 20) -> Image.Image:
    """Red left, blue right: its orientation changes what a model sees."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 2] = (220, 30, 30)
    arr[:, width // 2:] = (30, 30, 220)
    return Image.fromarray(arr)


def _write_images(root: Path, cell: Image.Image) -> None:
    """The usable files: every mode, size and container a user's folder may hold."""
    cell.save(root / "plain.jpg")
    cell.convert("L").save(root / "gray.png")
    Image.fromarray(np.asarray(cell.convert("L"), np.uint16) * 257).save(root / "gray16.png")
    (root / "rgb16.png").write_bytes(_png16_rgb(48, 40))
    cell.convert("P").save(root / "palette.png")
    cell.convert("P").save(root / "palette transparent.png", transparency=0)
    cell.convert("CMYK").save(root / "cmyk.jpg")
    cell.convert("RGBA").save(root / "rgba.png")
    cell.convert("LA").save(root / "la.png")
    cell.save(root / "multipage.tif", save_all=True, append_images=[cell.convert("L")])
    exif = Image.Exif()
    exif[0x0112] = 6
    _halves().save(root / "rotated.jpg", exif=exif, quality=95)
    cell.save(root / "a png named.jpg", format="PNG")
    cell.save(root / "cellule é 血 球.png")
    (root / "cell.jpg").mkdir()
    cell.save(root / "cell.jpg" / "inside.png")
    (root / "empty folder.png").mkdir()


def _write_unusable(root: Path, cell: Image.Image) -> None:
    """The files that must each give one clear error."""
    (root / "empty.jpg").write_bytes(b"")
    cell.resize((1, 1)).save(root / "one pixel.png")
    Image.new("RGB", cell.size, (231, 229, 236)).save(root / "blank.png")
    Image.fromarray(np.random.default_rng(2).integers(0, 3, (60, 80), np.uint8)).save(root / "dark pixels.png")
    (root / "web page.jpg").write_bytes(b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n")
    (root / "notes.jpg").write_text("slide 12, patient 4: check again\n")
    jpeg = _encoded(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)),
                    "JPEG")
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "corrupt header.jpg").write_bytes(_zeroed(jpeg, b"\xff\xc0", 12))
    (root / "no scan.jpg").write_bytes(_zeroed(jpeg, b"\xff\xda", 4))
    png = _encoded(cell, "PNG")
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    bad_crc = bytearray(png)
    bad_crc[png.find(b"IHDR") + 17] ^= 0xFF
    (root / "bad header crc.png").write_bytes(bytes(bad_crc))
    broken = bytearray(png)
    broken[png.find(b"IDAT") + 10] ^= 0xFF
    (root / "broken stream.png").write_bytes(bytes(broken))
    Image.new("L", (9000, 8000)).save(root / "bomb.png")
    (root / "huge header.gif").write_bytes(_huge_gif_header())
    os.symlink(root / "moved away.jpg", root / "dangling.jpg")
    os.symlink("loop.jpg", root / "loop.jpg")
    os.symlink(".", root / "back here")
    os.mkfifo(root / "pipe.jpg")
    (root / ".DS_Store").write_bytes(b"\x00\x01junk")
    (root / "readme.txt").write_text("not an image name: skipped in folders")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("awkward") / "my slides"
    root.mkdir()
    cell = draw_cell(0, np.random.default_rng(3), size=48)
    _write_images(root, cell)
    _write_unusable(root, cell)
    return root


@pytest.fixture(scope="module")
def engine():
    from hqnn_desktop.core.packs import load_pack
    from hqnn_desktop.core.predict import Engine

    return Engine(load_pack(BUNDLED / "pbc8"), MODELS, batch_size=8, decode_workers=2)


def _classify(engine, inputs: list, keep_latents: bool = False) -> list[ImageResult]:
    return _with_watchdog(lambda: list(engine.classify(iter_image_paths(inputs), keep_latents=keep_latents)))


def _relative(results: list[ImageResult], root: Path) -> dict[str, ImageResult]:
    return {os.path.relpath(r.path, root): r for r in results}


def test_every_file_classified_or_one_clear_error(engine, corpus):
    results = _classify(engine, [corpus, corpus / "plain.jpg", str(corpus / "cell.jpg" / ".." / "rgba.png")])
    names = [os.path.relpath(r.path, corpus) for r in results]
    assert sorted(names) == sorted(EXPECTED), "one result per file, none twice, nothing extra"
    for name, r in _relative(results, corpus).items():
        pattern = EXPECTED[name]
        if pattern is None:
            assert r.error is None, f"{name}: {r.error}"
            assert set(r.proba) == set(MODELS)
            for p in r.proba.values():
                assert p.shape == (8,) and abs(float(p.sum()) - 1) < 1e-4
            assert r.frames == (2 if name == "multipage.tif" else 1), name  # a stack says so
        else:
            assert r.error and re.search(pattern, r.error), f"{name}: {r.error!r}"
            assert not r.proba and "Traceback" not in r.error and len(r.error) < 160


def test_exif_orientation_reaches_the_model(engine, tmp_path):
    upright = tmp_path / "upright.png"
    _halves().transpose(Image.Transpose.ROTATE_270).save(upright)
    exif = Image.Exif()
    exif[0x0112] = 6
    tagged, untagged = tmp_path / "tagged.png", tmp_path / "untagged.png"
    _halves().save(tagged, exif=exif)
    _halves().save(untagged)
    by_name = {Path(r.path).name: r for r in _classify(engine, [upright, tagged, untagged], keep_latents=True)}
    np.testing.assert_allclose(by_name["tagged.png"].features, by_name["upright.png"].features, atol=1e-5)
    assert not np.allclose(by_name["untagged.png"].features, by_name["upright.png"].features, atol=1e-3)


def test_unreadable_file(engine, tmp_path):
    locked = tmp_path / "locked.png"
    draw_cell(1, np.random.default_rng(0)).save(locked)
    locked.chmod(0)
    [result] = _classify(engine, [tmp_path])
    if os.geteuid() == 0:
        assert result.error is None and set(result.proba) == set(MODELS)
        pytest.skip("running as root: chmod 000 does not stop root from reading, so the file is classified "
                    "and the permission-denied message cannot be checked")
    assert result.error == "The file cannot be read: permission denied."


def test_unreadable_subfolder_gets_an_error_row(engine, tmp_path):
    (tmp_path / "closed").mkdir()
    draw_cell(1, np.random.default_rng(0)).save(tmp_path / "closed" / "c.png")
    (tmp_path / "closed").chmod(0)
    try:
        results = _classify(engine, [tmp_path])
    finally:
        (tmp_path / "closed").chmod(0o755)
    if os.geteuid() == 0:
        assert [Path(r.path).name for r in results] == ["c.png"] and results[0].error is None
        pytest.skip("running as root: chmod 000 does not stop root from listing the folder")
    assert [(Path(r.path).name, r.error) for r in results] == [
        ("closed", "This folder cannot be opened: permission denied.")]


def test_damaged_exif_keeps_the_image(tmp_path, monkeypatch):
    from PIL import ImageOps

    def broken(im):
        raise struct.error("unpack requires a buffer of 12 bytes")

    path = tmp_path / "x.jpg"
    _halves().save(path)
    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    assert load_rgb(path).size == (60, 20)


def test_non_file_paths_refused_quickly(tmp_path):
    os.mkfifo(tmp_path / "fifo.png")
    for path in (tmp_path / "fifo.png", Path("/dev/zero")):
        with pytest.raises(ImageError, match="not an ordinary file"):
            _with_watchdog(lambda p=path: load_rgb(p), timeout=10)


@pytest.mark.parametrize("name,content,needle", [
    ("drawing.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "vector drawing"),
    ("iphone.jpg", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
    ("answer.jpg", b'{"error": "not found"}', "holds text"),
    ("random.jpg", bytes(range(256)) * 4, "unknown or damaged format"),
])
def test_common_non_images_are_named(tmp_path, name, content, needle):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageError, match=needle):
        load_rgb(tmp_path / name)


def test_impossible_names_get_short_messages(tmp_path):
    with pytest.raises(ImageError, match=r"^The file name is not valid \(it contains a null character\)\.$"):
        load_rgb("cell\0.png")
    with pytest.raises(ImageError) as info:
        load_rgb(tmp_path / ("x" * 300 + ".png"))
    assert str(info.value) == "The file could not be read (File name too long)."


def test_deep_images_read_like_their_8_bit_copies(tmp_path):
    import tifffile

    rng = np.random.default_rng(0)
    colour8 = rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)
    grey8 = colour8[..., 0]

    def same(path, expected=grey8):
        got = np.asarray(load_rgb(path), dtype=int)
        want = np.repeat(expected[..., None], 3, -1) if expected.ndim == 2 else expected
        return np.abs(got - want.astype(int)).max() <= 1

    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "full16.png")
    Image.fromarray(grey8.astype(np.uint16) * 16).save(tmp_path / "camera12.png")  # a 12-bit camera
    hot = grey8.astype(np.uint16) * 16
    hot[0, 0] = 65535  # one saturated pixel must not darken the rest
    Image.fromarray(hot).save(tmp_path / "hot_pixel.png")
    assert same(tmp_path / "full16.png") and same(tmp_path / "camera12.png")
    assert np.abs(np.asarray(load_rgb(tmp_path / "hot_pixel.png"), dtype=int)[1:, :, 0] - grey8[1:]).max() <= 1
    tifffile.imwrite(tmp_path / "rgb12.tif", np.round(colour8 * (4096 / 255)).astype(np.uint16), photometric="rgb")
    tifffile.imwrite(tmp_path / "planes16.tif", np.moveaxis(colour8.astype(np.uint16) * 257, -1, 0),
                     photometric="rgb", planarconfig="separate")
    tifffile.imwrite(tmp_path / "half.tif", (colour8 / 255).astype(np.float16), photometric="rgb")
    tifffile.imwrite(tmp_path / "grey32.tif", grey8.astype(np.uint32) << 24, photometric="minisblack")
    tifffile.imwrite(tmp_path / "white_is_zero.tif", (255 - grey8).astype(np.uint16) * 257,
                     photometric="miniswhite")
    with_alpha = np.stack([grey8.astype(np.uint16) * 257, np.full_like(grey8, 65535, np.uint16)], -1)
    tifffile.imwrite(tmp_path / "grey_alpha16.tif", with_alpha, photometric="minisblack", extrasamples=[2])
    for name in ("rgb12.tif", "planes16.tif", "half.tif"):
        assert same(tmp_path / name, colour8), name
    for name in ("grey32.tif", "white_is_zero.tif", "grey_alpha16.tif"):
        assert same(tmp_path / name), name
    camera12 = colour8.astype(np.uint16) * 16  # 12-bit colour in a 16-bit PNG: Pillow keeps 4 bits
    (tmp_path / "camera12_rgb.png").write_bytes(_png16(camera12))
    opaque = np.full(colour8.shape[:2] + (1,), 65535, np.uint16)  # its high byte must not hide the dim colours
    (tmp_path / "camera12_rgba.png").write_bytes(_png16(np.concatenate([camera12, opaque], -1)))
    for name in ("camera12_rgb.png", "camera12_rgba.png"):
        with pytest.raises(ImageError, match="uses only the lowest 14 or fewer"):
            load_rgb(tmp_path / name)
    extra = np.concatenate([colour8.astype(np.uint16) * 257, np.zeros(colour8.shape[:2] + (1,), np.uint16)], -1)
    tifffile.imwrite(tmp_path / "extra_channel.tif", extra, photometric="rgb", extrasamples=[0])
    assert same(tmp_path / "extra_channel.tif", colour8)  # an unspecified extra sample is not opacity
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([grey8.astype(np.uint16) * 257] * 3), photometric="minisblack")
    assert same(tmp_path / "stack.tif")  # three slices of a stack: the first one
    values = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    values[0, :3] = (np.nan, np.inf, -np.inf)
    Image.fromarray(values, mode="F").save(tmp_path / "float.tif")
    gray = np.asarray(load_rgb(tmp_path / "float.tif"))[..., 0]
    assert gray[0, 0] == 0 and gray[0, 1] == 255 and gray[-1, -1] == 255


def test_damaged_or_huge_deep_tiffs_get_reasons_not_crashes(tmp_path, monkeypatch):
    import tifffile

    from hqnn_desktop.core import imageio
    from hqnn_desktop.core.datasets import load_images

    picture = np.random.default_rng(3).integers(0, 65535, (200, 160, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "whole.tif", picture, photometric="rgb", compression="zlib")
    data = (tmp_path / "whole.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[:300])
    _, errors = load_images([tmp_path / "cut.tif", tmp_path / "whole.tif"], 32)
    assert errors[0] and "Traceback" not in errors[0] and errors[1] is None
    tifffile.imwrite(tmp_path / "half.tif", (picture / 65535).astype(np.float16), photometric="rgb")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 10_000)
    with pytest.raises(ImageError, match=r"too large to open safely \(0 megapixels\); the limit"):
        load_rgb(tmp_path / "half.tif")


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_cli_csv_one_error_row_per_model(corpus, tmp_path, capsys):
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9 not utf-8.png")
    draw_cell(2, np.random.default_rng(1)).save(odd.decode("utf-8", "surrogateescape"), format="PNG")
    out = tmp_path / "out.csv"
    args = ["classify", str(corpus), str(corpus / "plain.jpg"), os.fsdecode(tmp_path), "--pack", "pbc8",
            "--out", str(out), "--batch-size", "8"]
    assert _with_watchdog(lambda: main(args)) == 0
    rows = _read_csv(out)
    by_path: dict[str, list[dict]] = {}
    for row in rows:
        by_path.setdefault(row["path"], []).append(row)
    assert all(sorted(r["model"] for r in rs) == sorted(MODELS) for rs in by_path.values())
    assert len(by_path) == len(EXPECTED) + 1
    errors = {os.path.relpath(p, corpus) for p, rs in by_path.items() if rs[0]["error"]}
    assert errors == {name for name, pattern in EXPECTED.items() if pattern}
    assert any("caf\\udce9 not utf-8.png" in p for p in by_path)
    assert not (tmp_path / "out.csv.partial").exists()
    err = capsys.readouterr().err
    assert f"{len(EXPECTED) + 1} images, {len(errors)} not usable" in err
    assert ("1 file holds several pictures (pages or frames); only the first of each was classified "
            "(for example multipage.tif: 2 pictures)") in err


def _rss() -> int:
    return psutil.Process().memory_info().rss


def _cheap_model(engine) -> None:
    """Replace the network by uniform probabilities: the decode-ahead queue is what is under test."""
    n_labels, n_features = len(engine.pack.labels), int(engine.pack.card["feature_dim"])

    def run_batch(images: np.ndarray, keep_latents: bool = False):
        proba = {k: np.full((len(images), n_labels), 1 / n_labels, np.float32) for k in engine.models}
        return proba, np.ones((len(images), n_features), np.float32), {}, {}

    engine.run_batch = run_batch


def test_many_images_bounded_queue_and_memory(engine, tmp_path):
    """Pulls from the path source never run more than the engine's bounded queue ahead of the results,
    and memory stays flat over a few hundred photo-sized images.

    The network is replaced by a stub (it runs on the same real images in the tests above, and its
    memory does not depend on the number of images); decoding, the queue and the results are real.
    """
    from hqnn_desktop.core.predict import Engine

    engine = Engine(engine.pack, ("baseline",), batch_size=8, decode_workers=2)
    _cheap_model(engine)
    rng = np.random.default_rng(7)
    for i in range(16):
        draw_cell(i % 3, rng, size=64).resize((640, 480)).save(tmp_path / f"c{i:03d}.jpg")
    files = sorted(str(p) for p in tmp_path.glob("*.jpg"))
    n_images = 400
    pulled = 0
    lock = threading.Lock()

    def source() -> Iterator[str]:
        nonlocal pulled
        for i in range(n_images):
            with lock:
                pulled += 1
            yield files[i % len(files)]

    # The engine holds at most 3 batches of decoded images queued, one batch in hand, one path in the feeder.
    ahead_limit = engine.batch_size * 3 + engine.batch_size + 1

    def run() -> tuple[int, int, int]:
        done, worst_ahead, rss_warm, rss_peak = 0, 0, 0, 0
        for result in engine.classify(source()):
            assert result.error is None
            done += 1
            with lock:
                worst_ahead = max(worst_ahead, pulled - done)
            if done == 4 * engine.batch_size:
                rss_warm = _rss()
            rss_peak = max(rss_peak, _rss()) if rss_warm else 0
        return done, worst_ahead, rss_peak - rss_warm

    done, worst_ahead, growth = _with_watchdog(run)
    assert done == n_images
    assert worst_ahead <= ahead_limit
    assert growth < 100 * 2**20, f"memory grew by {growth / 2**20:.0f} MiB after warm-up"


def test_cancel_and_early_close_stop_every_thread(engine, corpus):
    paths = list(iter_image_paths([corpus])) * 4
    seen = []

    def cancelled() -> bool:
        return len(seen) >= engine.batch_size

    def run_cancel() -> None:
        seen.extend(engine.classify(paths, cancelled=cancelled))

    _with_watchdog(run_cancel, timeout=60)
    assert engine.batch_size <= len(seen) < len(paths)

    def run_close() -> int:
        gen = engine.classify(paths)
        first = next(gen)
        gen.close()  # what closing the window mid-batch does to the worker's generator
        return 1 if first else 0

    assert _with_watchdog(run_close, timeout=60) == 1
    lingering = [t.name for t in threading.enumerate() if t.name.startswith(("feeder", "decode"))]
    assert not lingering


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_failing_path_source_is_not_a_silent_early_end(engine):
    from hqnn_desktop.core.predict import Engine

    quick = Engine(engine.pack, ("baseline",), batch_size=4, decode_workers=1)
    _cheap_model(quick)

    def source() -> Iterator[str]:
        yield from ("a.png", "b.png")
        raise RuntimeError("the folder listing failed")

    with pytest.raises(RuntimeError, match="folder listing"):
        _with_watchdog(lambda: list(quick.classify(source())), timeout=30)
