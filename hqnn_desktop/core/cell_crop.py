"""Centre a model's input on the stained white cell of a smear field.

Field photographs such as the Blood Cell Images dataset (320x240, one white cell
somewhere among many red cells) give the cell only a fraction of the pixels once
the whole field is shrunk to the model's input. A pack whose card asks for it
first cuts a square window around the most strongly stained spot: white-cell
nuclei stain purple (much more blue than red), red cells, background and the
black fill of rotated images do not. Platelets are purple too but small, so the
stain map is averaged over a tenth of the image first and the cell wins. A bluish
colour cast over the whole picture (another microscope's white balance) is taken
off first: the typical pixel is background or red cell, never stain. In a picture
without colour the nucleus is instead the darkest spot (the black fill aside).

The window is a fixed fraction of the image's shorter side, so the same pack
works on larger exports of the same magnification's fields; it is shifted to
stay inside the picture, never padded. An image without any stained spot keeps
its centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from .configs import MAX_CELL_WINDOW, MIN_CELL_WINDOW

#: The card's name for this step (``preprocessing.crop.kind``).
KIND = "stained_cell"
#: The stain map is computed on a copy whose shorter side is at most this many pixels (speed).
_MAP_SIDE = 256
#: ... and whose longer side is at most this many (a long strip would otherwise be mapped at full size).
_MAP_LONG_SIDE = 4096
#: Averaged stain (blue minus red, 0-255) below which no cell is taken to be present.
_MIN_STAIN = 4.0
#: Most pixels of a picture without colour have channels within this many levels of each other.
_GREY_SPREAD = 3
#: Grey level (0-255) below which a pixel is the black fill of a rotated picture, not stain.
_FILL_LEVEL = 16


@dataclass(frozen=True)
class CellCrop:
    """A square window on the stained cell, ``side`` times the image's shorter side."""

    side: float = 0.6

    def __post_init__(self) -> None:
        if not MIN_CELL_WINDOW <= self.side <= MAX_CELL_WINDOW:
            raise ValueError(f"its cell window must be between {MIN_CELL_WINDOW} and {MAX_CELL_WINDOW} of "
                             f"the image's shorter side, not {self.side}")

    def box(self, im: Image.Image) -> tuple[int, int, int, int]:
        """The window (left, top, right, bottom) in ``im``'s pixels."""
        w, h = im.size
        cx, cy = _stain_centre(im)
        s = max(1, round(self.side * min(w, h)))
        left = min(max(0, round(cx - s / 2)), w - s)
        top = min(max(0, round(cy - s / 2)), h - s)
        return left, top, left + s, top + s

    def apply(self, im: Image.Image) -> Image.Image:
        """The window of ``im`` (an RGB image) around its stained cell."""
        return im.crop(self.box(im))

    def describe(self) -> str:
        """The step in words, for the model card and the pack list."""
        return f"a square of {self.side:.0%} of the picture's shorter side, centred on the stained cell"

    def to_card(self) -> dict:
        return {"kind": KIND, "side": self.side}

    @classmethod
    def from_card(cls, entry: object) -> CellCrop:
        """The step a card describes; ``ValueError`` with a reason when it cannot be used."""
        if not isinstance(entry, dict) or entry.get("kind") != KIND:
            raise ValueError(f"its crop step is not one this version knows (expected kind '{KIND}')")
        unknown = sorted(set(entry) - {"kind", "side"})
        if unknown:  # a misspelt or newer setting: following the step without it would cut other pixels
            raise ValueError(f"its crop step has settings this version does not know: {', '.join(map(str, unknown))}")
        side = entry.get("side")
        if isinstance(side, bool) or not isinstance(side, (int, float)):
            raise ValueError("its crop step has no numeric 'side'")  # noqa: TRY004 (a bad card, not a bug)
        return cls(float(side))


def _purple(rgb: np.ndarray) -> np.ndarray:
    """How much bluer than red each pixel is, beyond the picture's overall tint (0-255)."""
    blue_over_red = rgb[..., 2] - rgb[..., 0]
    cast = max(0.0, float(np.median(blue_over_red)))  # a bluish white balance tints everything alike
    return np.clip(blue_over_red - np.float32(cast), 0, 255).astype(np.uint8)


def is_grey(rgb: np.ndarray) -> bool:
    """A picture (H, W, 3) without colour: a monochrome camera, or saved as greyscale. Stains are
    told apart by colour, so models trained on colour pictures cannot be trusted on one."""
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)
    return float(np.percentile(spread, 99)) <= _GREY_SPREAD


def _darkness(rgb: np.ndarray) -> np.ndarray:
    """In a grey picture the stained nucleus is the darkest thing after the black fill of a
    rotated picture: darkness beyond that of the typical pixel (background or red cell)."""
    grey = rgb.mean(axis=-1)
    darker = np.clip(np.median(grey) - grey, 0, 255)
    fill = Image.fromarray(((grey < _FILL_LEVEL) * 255).astype(np.uint8))
    reach = 2 * max(1, round(0.02 * min(fill.size))) + 1  # the fill's blurred (JPEG) edge is dark too
    darker[np.asarray(fill.filter(ImageFilter.MaxFilter(reach))) > 0] = 0
    return darker.astype(np.uint8)


def _stain_centre(im: Image.Image) -> tuple[float, float]:
    """Centre, in ``im``'s pixels, of the strongest averaged purple stain (image centre if none)."""
    w, h = im.size
    scale = min(1.0, _MAP_SIDE / min(w, h), _MAP_LONG_SIDE / max(w, h))
    small = im if scale == 1.0 else im.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                              Image.BILINEAR)
    rgb = np.asarray(small.convert("RGB"), dtype=np.int16)
    stain = _darkness(rgb) if is_grey(rgb) else _purple(rgb)
    radius = max(1, round(0.05 * min(small.size)))
    blurred = np.asarray(Image.fromarray(stain).filter(ImageFilter.BoxBlur(radius)), dtype=np.float32)
    if blurred.max() < _MIN_STAIN:
        return w / 2, h / 2
    y, x = np.unravel_index(int(np.argmax(blurred)), blurred.shape)
    return (x + 0.5) / scale, (y + 0.5) / scale
