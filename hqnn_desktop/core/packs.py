"""Model packs: a folder with ``card.json`` and safetensors weights, verified before use.

``card.json`` says everything needed to rebuild and to trust the weights: labels,
preprocessing, backbone, qubits, layers, parameter counts, training
configuration, metrics, data provenance, and the sha256 of every weight file.
Weights are safetensors (never pickle), so a pack from a stranger cannot run
code. A pack whose files do not match its card is refused with a message that
says what is wrong. Packs are written to a temporary folder and swapped in, so
a crash never leaves half a pack.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .cell_crop import CellCrop
from .configs import MAX_INPUT_SIZE, MAX_QUBITS, MIN_INPUT_SIZE, MIN_QUBITS
from .heads import MODEL_KINDS, Head
from .imageio import is_image_name, load_rgb, to_model_input
from .inputs import Window
from .ood import OodModel
from .orientations import card_orientations_problem
from .paths import unwritable_reason
from .storage import DIR_MODE, FILE_MODE, atomic_write_json, remove_tree

CARD = "card.json"
BACKBONE_FILE = "backbone.safetensors"
HEADS_FILE = "heads.safetensors"
#: Names of the "unlike training data" tensors in the heads file.
OOD_PREFIX = "ood."
FORMAT_VERSION = 1
REQUIRED_KEYS = ("name", "labels", "backbone", "input_size", "normalization", "n_qubits", "layers",
                 "feature_dim", "models", "files")


class PackError(Exception):
    """A pack that cannot be used, with a message for the user."""


def model_backbone_file(kind: str) -> str:
    """The weight file of a model's own backbone (packs trained with per-model fine-tuning)."""
    return f"backbone.{kind}.safetensors"


def resources_dir() -> Path:
    """The bundled resources (packs, samples): ``$HQNN_RESOURCES`` or the checkout's resources/."""
    env = os.environ.get("HQNN_RESOURCES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "resources"


def bundled_packs_dir() -> Path:
    return resources_dir() / "packs"


def user_packs_dir() -> Path:
    """Packs the user trained or installed: platformdirs' data folder, or ``$HQNN_DATA_DIR``."""
    from .paths import data_dir

    return data_dir() / "packs"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_card(folder: Path) -> dict:
    """Read and check a pack's card (not its weights)."""
    card_path = Path(folder) / CARD
    if not card_path.is_file():
        raise PackError(f"{folder} is not a model pack: it has no {CARD}.")
    damaged = f"The pack {Path(folder).name}'s model card ({card_path}) is damaged"
    try:
        card = json.loads(card_path.read_text(encoding="utf-8-sig"))  # a card edited in Windows Notepad starts with a BOM
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackError(f"{damaged}: it is not readable JSON ({exc}).") from exc
    if not isinstance(card, dict):
        raise PackError(f"{damaged}: it is not a JSON object.")
    missing = [k for k in REQUIRED_KEYS if k not in card]
    if missing:
        raise PackError(f"{damaged}: it lacks {', '.join(missing)}.")
    problem = card_problem(card)
    if problem:
        raise PackError(f"{damaged}: {problem}.")
    return card


def _is_int(value: object, low: int, high: int | None = None) -> bool:
    """A whole number (not a boolean, which JSON and Python would also take) in ``low..high``."""
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


def card_problem(card: dict) -> str | None:
    """What is wrong with the fields of a card that has them all, in words; None when nothing.

    Checked before any use, because a field of the wrong type otherwise crashes deep
    inside (a number where the labels belong) or, worse, quietly gives wrong results
    (a string of labels becomes one class per letter).
    """
    labels = card["labels"]
    if not isinstance(card["name"], str) or not card["name"].strip():
        return "its name is not a piece of text"
    if not isinstance(labels, list) or len(labels) < 2 or not all(
            isinstance(label, str) and label.strip() for label in labels):
        return "its labels must be a list of at least two class names"
    if len({label.strip().lower() for label in labels}) != len(labels):
        return "its labels name the same class twice"
    if not isinstance(card["backbone"], str):
        return "its backbone is not a name"
    if not _is_int(card["input_size"], MIN_INPUT_SIZE, MAX_INPUT_SIZE):
        return f"its input size must be a whole number of pixels from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE}"
    if not _is_int(card["n_qubits"], MIN_QUBITS, MAX_QUBITS):
        return f"its number of qubits must be a whole number from {MIN_QUBITS} to {MAX_QUBITS}"
    if not _is_int(card["layers"], 1) or not _is_int(card["feature_dim"], 1):
        return "its circuit layers and feature size must be whole numbers of at least 1"
    if not isinstance(card["normalization"], dict):
        return "its normalization is not a table of values"
    if not isinstance(card.get("circuit", {}), dict):
        return "its circuit is not a table of settings"
    try:
        card_crop(card)
    except ValueError as exc:
        return str(exc)
    if problem := card_orientations_problem(card):
        return problem
    models = card["models"]
    if not isinstance(models, dict) or not models or not all(isinstance(v, dict) for v in models.values()):
        return "its models must be a table with one entry per model"
    files = card["files"]
    if not isinstance(files, dict) or not files or not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()):
        return "its files must be a table giving each weight file's sha256 checksum"
    return None


def card_crop(card: dict) -> CellCrop | None:
    """The cell window a card asks for before the resize (None: the whole image is used);
    ``ValueError`` with a reason when the card's preprocessing cannot be followed."""
    preprocessing = card.get("preprocessing", {})
    if not isinstance(preprocessing, dict):
        raise ValueError("its preprocessing is not a table of steps")  # noqa: TRY004 (a bad card, not a bug)
    if "crop" not in preprocessing:
        return None
    return CellCrop.from_card(preprocessing["crop"])  # an empty ("null") step is a damaged card, not "no crop"


def verify_files(folder: Path, card: dict) -> None:
    """Check every weight file against the sha256 in the card."""
    for name, expected in card["files"].items():
        path = Path(folder) / name
        if Path(name).name != name:
            raise PackError(f"The model card names a file outside the pack: {name}.")
        if not path.is_file():
            raise PackError(f"The pack {folder.name} is incomplete: {name} is missing.")
        size, recorded = path.stat().st_size, expected.get("bytes")
        if isinstance(recorded, int) and size != recorded:
            raise PackError(f"The pack {folder.name} is damaged or was modified: {name} is {size:,} bytes instead "
                            f"of the {recorded:,} its model card records (cut short by an interrupted copy, or "
                            f"replaced). {_RESTORE}")
        if sha256_file(path) != expected.get("sha256"):
            raise PackError(f"The pack {folder.name} is damaged or was modified: {name} does not match the "
                            f"checksum in its model card (its contents changed after it was saved). {_RESTORE}")


def starting_backbone(folder: str | Path, backbone: str) -> tuple[Path, dict]:
    """The weights file of a pack's backbone for a new training run to start from, checked
    (card, checksums, architecture), and what the new card records about it.

    Starting from a backbone that already knows blood cells (instead of ImageNet's
    photographs) is how a lab builds on a pack for its own microscope's images.
    """
    folder = Path(folder)
    card = read_card(folder)
    if card["backbone"] != backbone:
        raise PackError(f"The pack {card['name']} is built on the {card['backbone']} backbone, not {backbone}: "
                        f"choose {card['backbone']} to start from it.")
    verify_files(folder, card)
    weights = folder / "backbone.safetensors"
    if "backbone.safetensors" not in card["files"]:
        raise PackError(f"The pack {card['name']} has no shared backbone file to start from.")
    data = card.get("data") or {}
    return weights, {"pack": card["name"], "backbone_sha256": card["files"]["backbone.safetensors"]["sha256"],
                     "data": data.get("name") or data.get("description")}


#: What to do about a damaged pack, bundled or the user's own.
_RESTORE = ("Restore the pack folder from a copy or train it again; for a bundled pack, reinstall "
            "hqnn-desktop.")


@dataclass
class Pack:
    """A loaded, verified pack: the shared feature extractor, the heads, and the backbones of
    models fine-tuned end to end on their own (empty for ordinary packs)."""

    path: Path
    card: dict
    extractor: torch.nn.Module
    heads: dict[str, Head]
    ood: OodModel | None = None
    model_extractors: dict[str, torch.nn.Module] = field(default_factory=dict)

    def extractor_for(self, kind: str) -> torch.nn.Module:
        """The backbone whose features ``kind``'s head was trained on: its own, else the shared one."""
        return self.model_extractors.get(kind, self.extractor)

    @property
    def name(self) -> str:
        return self.card["name"]

    @property
    def labels(self) -> list[str]:
        return list(self.card["labels"])

    @property
    def input_size(self) -> int:
        return int(self.card["input_size"])

    @property
    def learnt_colour(self) -> bool:
        """True when the pack learnt from colour pictures: most of its training pictures had colour
        (``data.colourless_share`` in the card; packs from before it was recorded learnt from colour)."""
        share = (self.card.get("data") or {}).get("colourless_share", 0.0)
        return not (isinstance(share, (int, float)) and share >= 0.5)

    @functools.cached_property
    def crop(self) -> CellCrop | None:
        """The window on the stained cell cut before the resize, for packs trained that way
        (read from the card once: every decoded image asks)."""
        return card_crop(self.card)

    def model_input(self, path: str | os.PathLike) -> np.ndarray:
        """Decode ``path`` into this pack's model input (uint8 HWC): the pixels it was trained on."""
        return self.prepare(load_rgb(path))[0]

    def prepare(self, im: Image.Image) -> tuple[np.ndarray, Window | None]:
        """The model input of a decoded picture and, for a pack with a cell window, where that
        window lies in the picture (left, top, right, bottom as fractions of width and height),
        so that the user can be shown which cell the models looked at."""
        crop = self.crop
        if crop is None:
            return to_model_input(im, self.input_size), None
        box = crop.box(im)
        w, h = im.size
        window = (box[0] / w, box[1] / h, box[2] / w, box[3] / h)
        return to_model_input(im.crop(box), self.input_size), window


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return {k: v.float() for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise PackError(f"The weight file {path.name} cannot be read ({exc}).") from exc


def trained_models(card: dict) -> tuple[str, ...]:
    """The models a pack holds, in the usual order (a pack may have been trained with fewer than three)."""
    return tuple(kind for kind in MODEL_KINDS if kind in card["models"])


def load_pack(folder: str | Path, models: tuple[str, ...] | None = None) -> Pack:
    """Verify and load a pack folder; ``models`` limits which heads are built (None: every
    model the pack was trained with, which may be fewer than the three)."""
    folder = Path(folder)
    restore_interrupted_save(folder)
    card = read_card(folder)
    verify_files(folder, card)
    trained = trained_models(card)
    if models is None:
        models = trained
    from .circuits import ANSATZ_ID

    if "hqnn" in models and card.get("circuit", {}).get("ansatz_id") != ANSATZ_ID:
        raise PackError(
            f"The pack {card['name']} was made for a different quantum circuit than this version of "
            "hqnn-desktop runs; retrain it or use a matching version."
        )
    unknown = [m for m in models if m not in card["models"]]
    if unknown:
        raise PackError(f"The pack {card['name']} was trained with {', '.join(trained)} only, not "
                        f"{', '.join(unknown)}; choose from those.")
    extractor = _load_extractor(folder, card, BACKBONE_FILE)
    model_extractors = {kind: _load_extractor(folder, card, _own_backbone(card, kind))
                        for kind in models if _own_backbone(card, kind)}
    head_state = _load_safetensors(folder / HEADS_FILE)
    heads = {}
    for kind in models:
        head = Head(kind, int(card["feature_dim"]), int(card["n_qubits"]), int(card["layers"]),
                    len(card["labels"]))
        prefix = f"{kind}."
        try:
            head.load_state_dict({k[len(prefix):]: v for k, v in head_state.items() if k.startswith(prefix)})
        except RuntimeError as exc:
            raise PackError(f"The {kind} weights do not fit the model described by the card.") from exc
        heads[kind] = head.eval()
    ood_tensors = {k[len(OOD_PREFIX):]: v.numpy() for k, v in head_state.items() if k.startswith(OOD_PREFIX)}
    ood = OodModel.from_pack(card["ood"], ood_tensors) if isinstance(card.get("ood"), dict) else None
    return Pack(folder, card, extractor, heads, ood, model_extractors)


def _own_backbone(card: dict, kind: str) -> str | None:
    """The file of ``kind``'s own backbone named by the card, checked to be one of its verified files."""
    name = card["models"].get(kind, {}).get("backbone_file")
    if name is not None and name not in card["files"]:
        raise PackError(f"The pack {card['name']} is incomplete: its card names {name} for the {kind} "
                        "model but gives no checksum for it.")
    return name


def _load_extractor(folder: Path, card: dict, name: str) -> torch.nn.Module:
    """A feature extractor of the card's backbone with the weights of ``name`` (already verified)."""
    from .train import FeatureExtractor

    extractor = FeatureExtractor(card["backbone"], pretrained=False)
    try:
        extractor.load_state_dict(_load_safetensors(folder / name))
    except RuntimeError as exc:
        raise PackError(f"The weights in {name} do not fit the backbone {card['backbone']}.") from exc
    return extractor.eval()


def save_pack(folder: str | Path, card: dict, extractor: torch.nn.Module, heads: dict[str, Head],
              fp16_backbone: bool = True, ood: OodModel | None = None,
              model_extractors: dict[str, torch.nn.Module] | None = None) -> Path:
    """Write a pack atomically: build it in a temporary folder, then swap it into place.

    ``ood`` (from :func:`core.ood.fit`) enables the "unlike training data" flag; its
    tensors are stored in 16 bits beside the heads. ``model_extractors`` are the own backbones of
    models fine-tuned end to end; each is written as :func:`model_backbone_file`
    and named in the card's entry for its model.
    """
    from safetensors import SafetensorError

    folder = Path(folder)
    check_pack_destination(folder)
    try:
        return _write_pack(folder, card, extractor, heads, fp16_backbone, ood, model_extractors)
    except (OSError, SafetensorError) as exc:  # a full disk, most often: say so, not a library's trace
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else
                  str(exc).removeprefix("Error while serializing: ").removeprefix("I/O error: "))
        raise PackError(f"The pack could not be saved in {folder} ({reason}); any pack saved there before is "
                        "unchanged. Free some disk space or choose another place.") from exc


def _write_pack(folder: Path, card: dict, extractor: torch.nn.Module, heads: dict[str, Head],
                fp16_backbone: bool, ood: OodModel | None,
                model_extractors: dict[str, torch.nn.Module] | None) -> Path:
    """:func:`save_pack`'s work, once the destination is checked."""
    from safetensors.torch import save_file

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        dtype = torch.float16 if fp16_backbone else torch.float32
        backbones = {BACKBONE_FILE: extractor}
        backbones.update({model_backbone_file(kind): e for kind, e in (model_extractors or {}).items()})
        for name, module in backbones.items():
            save_file({k: v.detach().cpu().to(dtype).contiguous() for k, v in module.state_dict().items()},
                      str(tmp / name))
        head_tensors = {f"{kind}.{k}": v.detach().float().contiguous()
                        for kind, head in heads.items() for k, v in head.state_dict().items()}
        card = dict(card)
        card["models"] = {kind: {k: v for k, v in entry.items() if k != "backbone_file"}
                          for kind, entry in card["models"].items()}  # the card names only what is written
        for kind in model_extractors or {}:
            card["models"][kind]["backbone_file"] = model_backbone_file(kind)
        card.pop("ood", None)  # describes only what is written below
        if ood is not None:
            head_tensors.update({f"{OOD_PREFIX}{name}": torch.as_tensor(t).to(torch.float16).contiguous()
                                 for name, t in ood.tensors.items()})
            card["ood"] = ood.card_entry()
        save_file(head_tensors, str(tmp / HEADS_FILE))
        card["format_version"] = FORMAT_VERSION
        card["files"] = {name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size}
                         for name in (*backbones, HEADS_FILE)}
        card["weights_dtype"] = {"backbone": str(dtype).replace("torch.", ""), "heads": "float32"}
        atomic_write_json(tmp / CARD, card)
        os.chmod(tmp, DIR_MODE)
        for f in tmp.iterdir():
            os.chmod(f, FILE_MODE)
        old = _set_aside_name(folder)
        if folder.exists():
            if old.exists():
                remove_tree(old)
            os.replace(folder, old)
        try:
            os.replace(tmp, folder)
        except BaseException:
            with contextlib.suppress(OSError):  # else the next listing or load restores it
                restore_interrupted_save(folder)
            raise
        if old.exists():  # the new pack is in place: a leftover old copy is removed at the next save
            remove_tree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


#: A pack name becomes a folder name: letters, digits, '_', and inside also '-', '.' and spaces
#: (Windows drops a trailing dot or space; a leading '-' reads as an option on a command line).
_PACK_NAME = re.compile(r"\w(?:[\w .-]*\w)?")
MAX_PACK_NAME = 64


def check_pack_name(name: str) -> str:
    """``name`` when it can name a new pack in the user's packs folder; else :class:`PackError` saying why.

    Saving replaces the pack's folder as a whole: an empty name would replace the
    packs folder itself, and ``..`` or a slash would write (and replace) outside it.
    A bundled pack's name is refused too: the user's pack would hide the bundled one.
    """
    if not name.strip():
        raise PackError("The pack needs a name, for example my-pack.")
    if "/" in name or "\\" in name:
        why = "it may not contain / or \\"
    elif name.startswith("."):
        why = "a name starting with a dot is hidden"
    elif len(name) > MAX_PACK_NAME:
        why = f"it is longer than {MAX_PACK_NAME} characters"
    elif not _PACK_NAME.fullmatch(name):
        why = "use letters, digits, '-', '_', '.' and spaces, and start and end with a letter or digit"
    elif (bundled_packs_dir() / name / CARD).is_file():  # a user pack of that name would hide it
        why = "a pack that comes with the app has that name, and both should stay available"
    else:
        return name
    raise PackError(f"'{name}' cannot be a pack name: {why}. For example: my-pack.")


def check_pack_destination(folder: str | Path, keep_clear_of: Iterable[str | Path | None] = ()) -> None:
    """Refuse, with :class:`PackError`, a pack folder whose saving would destroy something.

    Saving replaces ``folder`` as a whole, so it may exist already only as a pack (or
    an empty folder), and the folder it sits in must be writable (the new version is
    written beside it, then renamed): checked before training, not after. It may neither
    be, hold nor sit inside the data in ``keep_clear_of`` (the training and validation
    images), which saving would delete or mix with.
    """
    folder = Path(folder)
    if folder.is_symlink():  # replacing it would swap the link, and leave the pack it points to as it was
        raise PackError(f"{folder} is a link to another folder; choose another name or place for the pack.")
    if folder.exists():
        if not folder.is_dir():
            raise PackError(f"{folder} is a file, not a model pack; choose another place for the pack.")
        if not (folder / CARD).is_file() and not _is_empty_dir(folder):
            raise PackError(f"{folder} already holds files and is not a model pack (it has no {CARD}); saving "
                            "a pack there would delete them. Choose a new folder for the pack.")
    if reason := unwritable_reason(folder):
        raise PackError(f"The pack cannot be saved in {folder}: {reason}. Choose another place for the pack.")
    target = folder.resolve()
    for data in keep_clear_of:
        if data is None:
            continue
        source = Path(data).resolve()
        if target == source or source in target.parents or target in source.parents:
            raise PackError(f"The pack cannot be saved in {folder}: that place overlaps the images in {data}, "
                            "which saving would delete or mix with. Choose a folder outside them.")


def _is_empty_dir(folder: Path) -> bool:
    """True for a folder with nothing in it; a folder that cannot be listed counts as full."""
    try:
        return not any(folder.iterdir())
    except OSError:
        return False


def _set_aside_name(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.old")


def restore_interrupted_save(folder: Path) -> None:
    """Put back the previous version of a pack whose save was interrupted between its two renames.

    :func:`save_pack` moves the old pack aside before moving the new one in; a
    failure or a kill in between would otherwise leave no pack at ``folder``.
    """
    old = _set_aside_name(folder)
    if old.is_dir() and not folder.exists():
        os.replace(old, folder)


@dataclass(frozen=True)
class PackInfo:
    """A pack found on disk, described from its card only (cheap; weights not verified)."""

    path: Path
    card: dict
    source: str

    @property
    def name(self) -> str:
        return self.card["name"]


@dataclass(frozen=True)
class DamagedPack:
    """A folder of a packs folder that cannot be used as a pack, and why."""

    path: Path
    source: str
    reason: str


def scan_packs(verify: bool = False) -> tuple[list[PackInfo], list[DamagedPack]]:
    """The packs of the bundled and the user's packs folders (bundled first), and the folders there
    whose card cannot be used, so that a listing can name them instead of leaving them out.
    ``verify`` also checks every weight file against its card (a few hundred milliseconds a pack),
    so that a listing names a damaged pack before anyone chooses it."""
    found, damaged = [], []
    for source, root in (("bundled", bundled_packs_dir()), ("user", user_packs_dir())):
        if not root.is_dir():
            continue
        for old in root.glob(".*.old"):
            restore_interrupted_save(root / old.name[1:-len(".old")])
        for d in sorted(root.iterdir()):
            if d.is_dir() and not d.name.startswith("."):
                try:
                    card = read_card(d)
                    if verify:
                        verify_files(d, card)
                    found.append(PackInfo(d, card, source))
                except PackError as exc:
                    damaged.append(DamagedPack(d, source, str(exc)))
    return found, damaged


def list_packs() -> list[PackInfo]:
    """The usable packs, bundled first, then the user's (weights not verified: load_pack does that)."""
    return scan_packs()[0]


def resolve_pack(name_or_dir: str | Path) -> Path:
    """The folder of the pack a user named, by name (user packs shadow bundled ones) or by path.

    A folder is taken as a pack when it holds a card (``card.json`` itself may be
    named), or when it is written as a path (with a separator, or absolute). Any
    other word is a pack name, so a data folder called like a pack (``pbc8/`` full
    of images in the current folder) is never mistaken for the pack. A damaged
    pack of that name is returned as well, so that loading it says what is wrong.
    """
    text = str(name_or_dir)
    if not text.strip():
        raise PackError("No pack was named: give a pack name (see hqnn-desktop packs) or a pack folder.")
    p = Path(text)
    if p.name == CARD and p.is_file():
        p = p.parent
    if (p / CARD).is_file():
        return p
    if p.is_absolute() or any(sep in text for sep in (os.sep, os.altsep, "/") if sep):
        if p.is_dir():
            raise PackError(f"{p} is not a model pack: it has no {CARD}.")
        if p.is_file():
            raise PackError(f"{p} is {'a picture' if is_image_name(p, unreadable_too=True) else 'a file'}, not a "
                            f"model pack: a pack is a folder holding {CARD}.")
        raise PackError(f"There is no model pack folder {p}.")
    packs, damaged = scan_packs()
    # The folder of that name first (where `train --name` writes), then a card of that name; the
    # user's packs shadow the bundled ones. A copy kept as a backup carries the same card name, so
    # several cards of one name in one packs folder are ambiguous, never settled silently.
    by_folder = [info.path for info in packs if info.path.name == text]
    if by_folder:
        return by_folder[-1]
    by_card = [info for info in packs if info.name == text]
    nearest = [info.path for info in by_card if info.source == by_card[-1].source]
    if len(nearest) > 1:
        raise PackError(f"Several packs are named '{text}' ({', '.join(str(p) for p in nearest)}); "
                        "give the pack's folder instead.")
    if nearest:
        return nearest[0]
    broken = [d.path for d in damaged if d.path.name == text]
    if broken:
        return broken[-1]
    names = ", ".join(sorted({info.name for info in packs})) or "none"
    here = (f" (the folder {text} here is not one: it has no {CARD})" if p.is_dir() else
            f" ({text} here is {'a picture' if is_image_name(p, unreadable_too=True) else 'a file'}, not a pack "
            "folder)" if p.is_file() else "")
    raise PackError(f"No model pack named '{text}' is installed{here}. Installed packs: {names}.")


#: The pack used when none was chosen: PBC's eight classes cover Blood Cell Images' four, and
#: its single-cell crops are what users most often classify.
DEFAULT_PACK = "pbc8"


def default_pack_name(packs: list[PackInfo] | None = None) -> str | None:
    """``DEFAULT_PACK`` when installed, else the first pack found (``packs``: as listed already)."""
    packs = list_packs() if packs is None else packs
    names = [info.name for info in packs]
    return DEFAULT_PACK if DEFAULT_PACK in names else (names[0] if names else None)
