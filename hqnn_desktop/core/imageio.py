"""Safe image decoding and the one resize every model input goes through.

Every path into a model (training, classify, evaluate, the GUI, the hardware
rerun) decodes with :func:`load_rgb` and crops/resizes with :func:`to_model_input`, so
a pack sees the same pixels at training time and in a user's hands.
Failures become :class:`ImageError` with a sentence a biologist can act on.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .cell_crop import CellCrop

#: Images larger than this many pixels are refused (decompression bombs).
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

#: Pictures with a side shorter than this many pixels are refused: they cannot show a cell.
MIN_SIDE = 16
#: A picture each of whose colours varies by no more than this many levels is blank (JPEG noise aside).
_BLANK_SPREAD = 2
#: Text metadata Pillow reads from a PNG (microscope software writes megabytes of XML there).
PngImagePlugin.MAX_TEXT_CHUNK = PngImagePlugin.MAX_TEXT_MEMORY = 64 * 1024 * 1024

#: File name endings of the image formats read here.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm",
     ".pbm", ".pnm", ".tga"}
)

#: Endings of other image files a user may well point us at: phone photos, vector drawings, newer
#: web formats, camera raw and microscope files. A folder walk takes them too, so each gets an
#: error row that says what to do instead of being skipped without a word.
OTHER_IMAGE_SUFFIXES = frozenset(
    {".heic", ".heif", ".avif", ".svg", ".svgz", ".jxl", ".jp2", ".j2k", ".psd",
     ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".raf", ".rw2",
     ".czi", ".nd2", ".lif", ".lsm", ".oib", ".oir", ".ims", ".vsi", ".ndpi", ".svs", ".mrxs", ".scn"}
)


class ImageError(Exception):
    """An image that cannot be used, with a message meant for the user."""


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully into an 8-bit RGB image with EXIF orientation applied.

    Multi-page files give their first page, and the returned image's ``info["frames"]``
    says how many the file holds (pages of a TIFF stack, frames of a GIF), so that the
    user can be told only the first was used; 16-bit, grayscale, palette, CMYK and
    alpha images are converted (alpha composited on white, like a slide).
    Anything else raises :class:`ImageError`, never a bare decoder exception, so
    a batch can record one clear reason per file and go on.
    """
    p = Path(path)
    try:
        _check_regular_file(p)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImageError(
                        f"The image is too large ({im.width}x{im.height} pixels); "
                        f"the limit is {MAX_PIXELS // 1_000_000} megapixels."
                    )
                frames = _frame_count(im)
                im.seek(0)
                deep_tiff = im.format == "TIFF" and _tiff_bits(im) > 8
                if deep_tiff:
                    deep = _deep_tiff(p, im)
                    if deep is not None:
                        return _with_frames(_usable(deep), frames)
                deep_png = im.format == "PNG" and any(tile[3] in _PNG_DEEP_COLOUR for tile in im.tile)
                im.load()
                if deep_tiff:
                    _check_pillow_tiff(im)
                if deep_png and _dim_high_bytes(im):
                    raise ImageError(_DEEP_MESSAGE.format(kind="PNG", instead="a 16-bit TIFF"))
                return _with_frames(_usable(_to_rgb(_upright(im))), frames)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's words: "Image size (N pixels) exceeds ..."
        raise _too_large(int(claimed.group(1)) if claimed else None) from exc
    except UnidentifiedImageError as exc:
        deep = _deep_tiff(p) if _first_bytes(p, 4) in _TIFF_MAGIC else None
        if deep is None:
            raise ImageError(_unidentified_message(p)) from exc
        return _usable(deep)
    except OSError as exc:
        raise ImageError(_os_error_message(exc)) from exc
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"The image data is damaged ({exc}).") from exc


def _frame_count(im: Image.Image) -> int:
    """How many pictures the file holds (1 where Pillow cannot tell)."""
    try:
        return max(1, int(getattr(im, "n_frames", 1)))
    except (OSError, ValueError, EOFError):  # a damaged later page: the first may still be fine
        return 1


def _with_frames(rgb: Image.Image, frames: int) -> Image.Image:
    rgb.info["frames"] = frames
    return rgb


def frames_note(frames: int) -> str:
    """What a result says about a file holding several pictures ('' for one)."""
    return f"first of {frames} pictures in the file" if frames > 1 else ""


def _usable(rgb: Image.Image) -> Image.Image:
    """Refuse pictures that cannot show a cell, rather than give them a confident label: a few
    pixels (a thumbnail or an icon saved by mistake) or one colour all over (a blank frame)."""
    if min(rgb.size) < MIN_SIDE:
        raise ImageError(f"The picture is only {rgb.width}x{rgb.height} pixels, too small to show a cell "
                         f"(at least {MIN_SIDE} pixels a side are needed).")
    if all(high - low <= _BLANK_SPREAD for low, high in rgb.getextrema()):
        raise ImageError("The picture is one colour all over (a blank frame); there is no cell to classify.")
    return rgb


def _check_regular_file(p: Path) -> None:
    """Refuse folders, pipes, devices and empty files before opening them.

    Opening a named pipe (or a device such as /dev/zero given by mistake) would
    block or read forever, so a batch would hang instead of reporting it.
    """
    try:
        info = p.stat()
    except ValueError as exc:  # a NUL character: no file can have this name
        raise ImageError("The file name is not valid (it contains a null character).") from exc
    if stat.S_ISDIR(info.st_mode):
        if not os.access(p, os.R_OK | os.X_OK):
            raise ImageError("This folder cannot be opened: permission denied.")
        raise ImageError("This is a folder, not an image file.")
    if not stat.S_ISREG(info.st_mode):
        raise ImageError("This is not an ordinary file (it is a pipe, device or socket).")
    if info.st_size == 0:
        raise ImageError("The file is empty (0 bytes).")


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a damaged EXIF block leaves the image as stored.

    The pixels are still good when only the metadata is broken, and a cell seen
    at another angle is still the same cell, so this never rejects an image.
    """
    try:
        return ImageOps.exif_transpose(im) or im
    except (ValueError, TypeError, KeyError, IndexError, SyntaxError, OSError, struct.error):
        return im


def exif_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation (1-8) that :func:`load_rgb` applies to ``path``; 1 for none, for damaged
    metadata and for unreadable files. Lets a viewer whose decoder ignores the tag in some formats
    (Qt in PNG and WebP) show the picture the way the models see it."""
    try:
        with Image.open(path) as im:
            if im.format == "PNG" and "exif" not in im.info and not _png_has_chunk(path, b"eXIf"):
                return 1  # Pillow would decode the whole picture to look for it after the pixels
            value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, ValueError, TypeError, KeyError, IndexError, SyntaxError, EOFError, struct.error,
            UnidentifiedImageError, Image.DecompressionBombError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _png_has_chunk(path: str | os.PathLike, kind: bytes) -> bool:
    """Whether a PNG file holds a chunk of ``kind``, found by skipping from chunk header to chunk
    header (nothing is decompressed)."""
    with open(path, "rb") as f:
        f.seek(8)  # the signature
        while len(head := f.read(8)) == 8:
            length, found = struct.unpack(">I4s", head)
            if found in (kind, b"IEND"):
                return found == kind
            f.seek(length + 4, os.SEEK_CUR)  # the data and its checksum
    return False


#: Starts of text files saved under an image name (web pages, notes, JSON answers).
_TEXT_STARTS = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"{", b"[")

#: ISO media "brands" of HEIC/HEIF photos (iPhones save these by default).
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")


def _unidentified_message(p: Path) -> str:
    """Name what the file is when it is a common non-image: a saved web page, a note, an SVG, a HEIC photo.

    "Not an image" alone leaves a user guessing; saying what it is tells them what to do.
    """
    head = _first_bytes(p)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in start[:512]:
        return "This is a vector drawing (SVG), not a photo; export it as PNG or JPEG first."
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "This is a HEIC/HEIF photo, a format that cannot be read here; export it as JPEG or PNG first."
    if start.startswith(_TEXT_STARTS):
        return ("This file holds text (it looks like a web page or data file saved with an image name), "
                "not an image.")
    if head and _looks_like_text(head):
        return "This file holds plain text, not an image."
    if p.suffix.lower() in OTHER_IMAGE_SUFFIXES:
        return (f"This {p.suffix.lower()} file is in a format that cannot be read here; "
                "export it as TIFF, PNG or JPEG first.")
    return "This file is not an image that can be read (unknown or damaged format)."


def _first_bytes(p: Path, n: int = 512) -> bytes:
    try:
        with open(p, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def _looks_like_text(head: bytes) -> bool:
    """True when the first bytes decode as UTF-8 with no control characters other than spacing."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\r\n" for ch in text)


def _os_error_message(exc: OSError) -> str:
    """Turn an operating-system or Pillow I/O error into a sentence the user can act on."""
    if isinstance(exc, PermissionError):
        return "The file cannot be read: permission denied."
    if isinstance(exc, FileNotFoundError):
        return "The file does not exist (or is a link to a file that was moved or deleted)."
    if exc.errno == errno.ELOOP:
        return "The path is a symbolic-link loop (a link that points back to itself)."
    if exc.errno is not None:  # from the operating system; str(exc) would repeat the whole path
        return f"The file could not be read ({exc.strerror})."
    text = str(exc)
    if "truncated" in text.lower():
        return "The image file is truncated (incomplete download or copy)."
    if "broken data stream" in text or "decoder error" in text:
        return "The image data is damaged (the file is corrupt or incomplete)."
    if "not available" in text or "unsupported" in text.lower():
        return f"The image uses a compression or variant that cannot be read here ({text})."
    return f"The image data is damaged or cannot be decoded ({text})."


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return Image.fromarray(to_8bit(np.asarray(im))).convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return _on_white(im.convert("RGBA"))
    return im.convert("RGB")


#: First bytes of TIFF files (little- and big-endian, classic and BigTIFF).
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
#: TIFF tags read here.
_BITS_PER_SAMPLE, _ORIENTATION, _PLANAR_CONFIGURATION = 258, 274, 284
#: TIFF photometric interpretations of grey (0: white is zero, 1: black is zero) and of RGB.
_MIN_IS_WHITE, _MIN_IS_BLACK, _RGB = 0, 1, 2
#: TIFF extra-sample kinds that are opacity (premultiplied, plain); others are just more data.
_ALPHA_PREMULTIPLIED, _ALPHA = 1, 2


#: How Pillow reads 16-bit colour PNGs: it keeps only the high byte of each value ...
_PNG_DEEP_COLOUR = ("RGB;16B", "RGBA;16B")
#: ... so one whose high bytes all stay below this used 14 bits or fewer (a camera's raw range).
_DIM_HIGH_BYTE = 64
_DEEP_MESSAGE = ("This {kind} stores 16 bits per colour but uses only the lowest 14 or fewer (a camera's raw "
                 "range), which cannot be read correctly here: it would look almost black. Save it as "
                 "{instead}, or as 8-bit PNG or JPEG with the full range.")


def _tiff_bits(im: Image.Image) -> int:
    bits = im.tag_v2.get(_BITS_PER_SAMPLE, 8)
    return max(bits) if isinstance(bits, tuple) else int(bits)


def _deep_tiff(p: Path, im: Image.Image | None = None) -> Image.Image | None:
    """A grey or colour TIFF of more than 8 bits per sample, read with tifffile.

    Pillow keeps only the high byte of 16-bit colour (a 12-bit camera's picture turns black),
    garbles 16-bit colour stored plane by plane and 32-bit unsigned grey, and cannot open
    half-floats or 16-bit grey with alpha; tifffile reads them all as numbers, and
    :func:`to_8bit` scales them like any other deep picture. None when tifffile cannot read
    the file (a damaged one, or a compression such as LZW that needs the imagecodecs package):
    the caller then uses Pillow's reading or its reason, checked by :func:`_check_pillow_tiff`.
    """
    import tifffile

    try:
        with tifffile.TiffFile(p) as tif:
            page = tif.pages[0]
            photometric = int(page.photometric)
            if photometric not in (_MIN_IS_WHITE, _MIN_IS_BLACK, _RGB):
                return None  # CMYK, Lab, palette...: Pillow reads those right
            _check_pixel_count(page.imagewidth * page.imagelength)
            arr = _first_plane(page.asarray(), page.axes)
            alpha_kind = (tuple(page.extrasamples) or (0,))[0]
            orientation = page.tags.valueof(_ORIENTATION, 1)
        colours = 3 if photometric == _RGB and arr.shape[-1] >= 3 else 1
        pixels = to_8bit(arr[..., :colours])
        if photometric == _MIN_IS_WHITE:
            pixels = 255 - pixels
        out = Image.fromarray(np.ascontiguousarray(pixels[..., 0] if colours == 1 else pixels)).convert("RGB")
        if arr.shape[-1] > colours and alpha_kind in (_ALPHA_PREMULTIPLIED, _ALPHA):
            alpha = Image.fromarray(np.ascontiguousarray(to_8bit(arr[..., colours])))
            out = _on_white(Image.merge("RGBA", (*out.split(), alpha)), premultiplied=alpha_kind == 1)
    except ImageError:
        raise
    except Exception:  # noqa: BLE001 (a decoder boundary: anything tifffile raises means "not read")
        return None
    if isinstance(orientation, int) and 2 <= orientation <= 8:
        out.getexif()[ExifTags.Base.Orientation] = orientation
    return _upright(out)


def _first_plane(arr: np.ndarray, axes: str) -> np.ndarray:
    """The picture as (height, width, samples): the first of any further planes (a stack's first
    slice, a series' first time point), colour planes moved last."""
    for axis in reversed(range(len(axes))):
        if axes[axis] not in "YXS":
            arr = arr.take(0, axis=axis)
    kept = [a for a in axes if a in "YXS"]
    if "S" not in kept:
        return arr[..., None]
    return np.moveaxis(arr, kept.index("S"), -1)


def _check_pixel_count(n: int) -> None:
    if n > MAX_PIXELS:
        raise _too_large(n)


def _too_large(n_pixels: int | None) -> ImageError:
    size = f" ({n_pixels / 1e6:,.0f} megapixels)" if n_pixels else ""
    return ImageError(f"The image is too large to open safely{size}; the limit is {MAX_PIXELS // 1_000_000} "
                      "megapixels.")


def _dim_high_bytes(im: Image.Image) -> bool:
    """Whether the colours of 16-bit data read by Pillow (high bytes only) all stay below
    :data:`_DIM_HIGH_BYTE`: the data used a camera's raw range, and the picture is nearly black."""
    return int(np.asarray(im.convert("RGB")).max()) < _DIM_HIGH_BYTE


def _check_pillow_tiff(im: Image.Image) -> None:
    """Refuse, in words, a TIFF of more than 8 bits that only Pillow could read, where its reading
    is known to be wrong: colour planes of more than 8 bits come out garbled, and colour that
    used 14 bits or fewer (a camera's raw range) comes out almost black."""
    if im.tag_v2.get(_PLANAR_CONFIGURATION) == 2:
        raise ImageError("This TIFF stores its colours of more than 8 bits in separate planes, with a "
                         "compression that cannot be read here; save it as an ordinary 8- or 16-bit RGB "
                         "TIFF (uncompressed or ZIP), PNG or JPEG.")
    if im.mode in ("RGB", "RGBA") and _dim_high_bytes(im):
        raise ImageError(_DEEP_MESSAGE.format(kind="TIFF", instead="an uncompressed or ZIP 16-bit TIFF"))


def _on_white(rgba: Image.Image, premultiplied: bool = False) -> Image.Image:
    """Composite on white, like a slide under the light."""
    if premultiplied:  # colours already multiplied by their alpha: add white where it is missing
        arr = np.asarray(rgba, dtype=np.int16)
        rgb = np.clip(arr[..., :3] + (255 - arr[..., 3:]), 0, 255).astype(np.uint8)
        return Image.fromarray(rgb)
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


#: How far over a range (as a factor) values may go and still count as within it.
_OVERSHOOT = 1.02


def to_8bit(arr: np.ndarray, rows: int = 512) -> np.ndarray:
    """8-bit values of a picture of more than 8 bits, the same picture an 8-bit copy would be.

    Unsigned values (and signed ones from 0 to 65535) are divided by the range of the bit
    depth they use (8, 10, 12, 14, 16, 24 or 32 bits: a 12-bit camera's pictures arrive in
    16-bit files), judged on all but the brightest thousandth of pixels, so a single hot pixel
    does not darken the rest. Floats (ImageJ's "32-bit" pictures, half-floats) are read by the
    range their values lie in, judged the same way (NaN and infinities aside): within 0 to 1
    they are fractions of full brightness (scaled by 255); above 1 but within 0 to 65535 they
    are intensities of the bit depth they use, like the integers they were converted from (a
    float copy of an 8-bit picture is divided by 255, of a 12-bit camera's by 4095, of a
    16-bit one by 65535). Values a hair over a range (2 %: rounding or resampling overshoot)
    count as within it and are clipped. Anything else (negative values, floats beyond 65535)
    has no agreed meaning, so its used range (the same thousandths aside) is stretched. NaN
    reads as the darkest value and infinities as the darkest or brightest. Done a band of rows
    at a time in float32, so a 64-megapixel picture needs no gigabyte-sized copies.
    """
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    lo, hi = _low_high(arr)
    kind = arr.dtype.kind
    if kind == "f" and lo >= 0 and hi <= _OVERSHOOT:
        lo, hi = 0.0, 1.0
    elif lo >= 0 and (kind == "u" or (kind == "i" and hi < 2 ** 16) or (kind == "f" and hi < 2 ** 16 * _OVERSHOOT)):
        # (Pillow hands 16-bit grey over as signed 32-bit numbers)
        # (a hair over the range is rounding where the picture was scaled: 65535 / 16 -> 4096)
        bits = next((b for b in (8, 10, 12, 14, 16, 24, 32) if hi < 2 ** b * _OVERSHOOT), 64)
        lo, hi = 0.0, float(2 ** bits - 1)
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.empty(arr.shape, np.uint8)
    for top in range(0, arr.shape[0], rows):
        band = np.nan_to_num(arr[top:top + rows].astype(np.float32), nan=lo, posinf=hi, neginf=lo)
        out[top:top + rows] = ((band - lo) * scale).clip(0, 255)
    return out


def _low_high(arr: np.ndarray) -> tuple[float, float]:
    """The thousandth and the last-but-one thousandth of the values (NaN and infinities left out),
    on every colour of a grid of at most about a million pixels: outliers such as hot pixels
    do not count."""
    step = max(1, math.isqrt(arr.shape[0] * arr.shape[1] // 1_000_000))
    flat = arr[::step, ::step].reshape(-1)
    if arr.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    if not flat.size:
        return 0.0, 0.0
    lo, hi = np.percentile(flat, (0.1, 99.9))
    return float(lo), float(hi)


def to_model_input(im: Image.Image, size: int, crop: CellCrop | None = None) -> np.ndarray:
    """Cut the pack's cell window when it has one, then resize to ``size`` x ``size``
    (stretching, as at training time); uint8 HWC array."""
    if crop is not None:
        im = crop.apply(im)
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR, reducing_gap=None)
    return np.asarray(im, dtype=np.uint8)


def load_model_input(path: str | os.PathLike, size: int, crop: CellCrop | None = None) -> np.ndarray:
    """Decode ``path`` and prepare it for a model: the single path from file to pixels."""
    return to_model_input(load_rgb(path), size, crop)


def is_image_name(path: Path, *, unreadable_too: bool = False) -> bool:
    """True when the name looks like an image and is not a hidden/system file (``.DS_Store``).

    With ``unreadable_too``, formats that cannot be read here (:data:`OTHER_IMAGE_SUFFIXES`)
    count as well: a walk through a user's folder reports them rather than skipping them,
    and no output file is ever written under an image's name.
    """
    suffixes = IMAGE_SUFFIXES | OTHER_IMAGE_SUFFIXES if unreadable_too else IMAGE_SUFFIXES
    return path.suffix.lower() in suffixes and not path.name.startswith(".")
