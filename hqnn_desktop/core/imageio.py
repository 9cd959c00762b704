"""Safe image decoding and the one resize every model input goes through.

Every path into a model (training, classify, evaluate, the GUI, the hardware
rerun) decodes with :func:`load_rgb` and resizes with :func:`to_model_input`, so
a pack sees the same pixels at training time and in a user's hands.
Failures become :class:`ImageError` with a sentence a biologist can act on.
"""

from __future__ import annotations

import os
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
    """
    p = Path(path)
    try:
        if p.is_dir():
            raise ImageError("This is a folder, not an image file.")
        if p.stat().st_size == 0:
            raise ImageError("The file is empty (0 bytes).")
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
                im = ImageOps.exif_transpose(im) or im
                return _to_rgb(im)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"The image is too large to open safely (limit {MAX_PIXELS // 1_000_000} megapixels)."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            "This file is not an image that can be read (unknown or damaged format)."
        ) from exc
    except PermissionError as exc:
        raise ImageError("The file cannot be read: permission denied.") from exc
    except FileNotFoundError as exc:
        raise ImageError("The file does not exist (or is a broken link).") from exc
    except OSError as exc:
        text = str(exc)
        if "truncated" in text.lower():
            raise ImageError("The image file is truncated (incomplete download or copy).") from exc
        if "Too many levels of symbolic links" in text:
            raise ImageError("The path is a symbolic-link loop.") from exc
        raise ImageError(f"The image could not be decoded ({text}).") from exc
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"The image data is damaged ({exc}).") from exc


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
