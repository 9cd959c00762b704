"""Safe image decoding and the one resize every model input goes through.

Every path into a model (training, classify, evaluate, the GUI, the hardware
rerun) decodes with :func:`load_rgb` and resizes with :func:`to_model_input`, so
a pack sees the same pixels at training time and in a user's hands.
Failures become :class:`ImageError` with a sentence a biologist can act on.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Images larger than this many pixels are refused (decompression bombs).
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

#: File name endings we treat as images when walking folders.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}
)


class ImageError(Exception):
    """An image that cannot be used, with a message meant for the user."""


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully into an 8-bit RGB image with EXIF orientation applied.

    Multi-page files give their first page; 16-bit, grayscale, palette, CMYK and
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
                im.seek(0)
                im.load()
                return _to_rgb(_upright(im))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"The image is too large to open safely (limit {MAX_PIXELS // 1_000_000} megapixels)."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(_unidentified_message(p)) from exc
    except OSError as exc:
        raise ImageError(_os_error_message(exc)) from exc
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"The image data is damaged ({exc}).") from exc


def _check_regular_file(p: Path) -> None:
    """Refuse folders, pipes, devices and empty files before opening them.

    Opening a named pipe (or a device such as /dev/zero given by mistake) would
    block or read forever, so a batch would hang instead of reporting it.
    """
    info = p.stat()
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


#: Starts of text files saved under an image name (web pages, notes, JSON answers).
_TEXT_STARTS = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"{", b"[")


def _unidentified_message(p: Path) -> str:
    """Say "text" when the file is text: a web page saved as .jpg is a common mistake."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(512)
    except OSError:
        head = b""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(_TEXT_STARTS):
        return "This file holds text (it looks like a web page or data file saved with an image name), not an image."
    if head and _looks_like_text(head):
        return "This file holds plain text, not an image."
    return "This file is not an image that can be read (unknown or damaged format)."


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
    text = str(exc)
    if "truncated" in text.lower():
        return "The image file is truncated (incomplete download or copy)."
    if "broken data stream" in text or "decoder error" in text:
        return "The image data is damaged (the file is corrupt or incomplete)."
    return f"The image could not be decoded ({text})."


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr = ((arr - lo) * scale).clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def to_model_input(im: Image.Image, size: int) -> np.ndarray:
    """Resize to ``size`` x ``size`` (stretching, as at training time); uint8 HWC array."""
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR, reducing_gap=None)
    return np.asarray(im, dtype=np.uint8)


def load_model_input(path: str | os.PathLike, size: int) -> np.ndarray:
    """Decode ``path`` and resize it for a model: the single path from file to pixels."""
    return to_model_input(load_rgb(path), size)


def is_image_name(path: Path) -> bool:
    """True when the name looks like an image and is not a hidden/system file (``.DS_Store``)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
