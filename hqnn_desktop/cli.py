"""Command line: ``hqnn-desktop [classify|evaluate|train|packs|hardware] ...``; no subcommand opens the window.

Exit codes: 0 when the inputs were processed (unusable images become error
rows), 2 on usage errors (bad options, unknown pack or model, an output that
would overwrite an input), 1 when the work itself failed (for example a damaged
pack, or no usable image at all), 130 when interrupted.

Building the parser imports no torch, so ``--help`` and argument errors answer
at once; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from . import __version__
from .core.configs import (
    BACKBONE_NAMES,
    BACKBONE_NOTES,
    MAX_CELL_WINDOW,
    MAX_INPUT_SIZE,
    MAX_LAYERS,
    MAX_QUBITS,
    MIN_CELL_WINDOW,
    MIN_INPUT_SIZE,
    MIN_QUBITS,
    AdaptConfig,
    HeadConfig,
)
from .core.wording import counted

SUBCOMMANDS = ("classify", "evaluate", "train", "packs", "hardware", "hardware-jobs", "hardware-account")


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


def _parse_models(text: str) -> tuple[str, ...]:
    """The models of ``--models``, each named once (twice would score it twice and break the report)."""
    from .core.kinds import MODEL_KINDS

    models = [m.strip().lower() for m in text.split(",") if m.strip()]
    if not models:
        raise argparse.ArgumentTypeError(f"name at least one model: {', '.join(MODEL_KINDS)}")
    bad = [m for m in models if m not in MODEL_KINDS]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(bad)}; choose from {', '.join(MODEL_KINDS)}")
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(twice)} is named more than once; name each model once")
    return tuple(models)


def _whole(low: int, high: int | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``; ``why`` explains the limits in the message."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < low or (high is not None and value > high):
            limits = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {limits}{why}, not {value}")
        return value

    return parse


def _real(rule: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse type: a finite number for which ``ok`` holds (``rule`` says which, in words)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, not {text}")
        return value

    return parse


_COUNT = _whole(1)
_FRACTION = _real("between 0 and 1, for example 0.15", lambda v: 0 < v < 1)
#: The largest learning rate accepted: far beyond any useful one (the defaults are 0.01 and 0.0001),
#: so that a slip (1e39, which torch cannot even hold) is refused at once rather than after the images are read.
MAX_LEARNING_RATE = 10
#: The largest contrastive weight: it scales the contrastive term against the classification error
#: (0 to 1 is usual); far larger only swamps the classification, or overflows to an infinite error.
MAX_CONTRASTIVE_WEIGHT = 100
_LEARNING_RATE = _real(f"above 0 and at most {MAX_LEARNING_RATE} (a learning rate is a small step size, such as "
                       "0.01; larger ones only make the training blow up)", lambda v: 0 < v <= MAX_LEARNING_RATE)
_CONTRASTIVE_WEIGHT = _real(f"from 0 to {MAX_CONTRASTIVE_WEIGHT} (it weighs the contrastive term against the "
                            "classification error, so 0 to 1 is usual; more only swamps the classification)",
                            lambda v: 0 <= v <= MAX_CONTRASTIVE_WEIGHT)
_CELL_WINDOW = _real(f"between {MIN_CELL_WINDOW} and {MAX_CELL_WINDOW} (a share of the picture's shorter side), "
                     "for example 0.6", lambda v: MIN_CELL_WINDOW <= v <= MAX_CELL_WINDOW)


_CLASSIFY_ORIENTATIONS = ("classify each picture in this many orientations and average: 1 as it is, 4 its quarter "
                          "turns, 8 those mirrored too (each costs one more pass; default: what the pack's card "
                          "chose on its validation images, see hqnn-desktop packs)")


def _orientations_option(command: argparse.ArgumentParser, help_text: str = _CLASSIFY_ORIENTATIONS) -> None:
    """--orientations, as core.orientations.CHOICES allows (not imported here: it brings numpy)."""
    command.add_argument("--orientations", type=int, choices=(1, 4, 8), metavar="{1,4,8}", help=help_text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; training defaults come from :mod:`core.configs`, as the Training tab's do."""
    from .core.kinds import MODEL_KINDS

    parser = argparse.ArgumentParser(
        prog="hqnn-desktop",
        description="Classify blood-cell images with a hybrid quantum-classical network and "
                    "classical twins. Without a subcommand the desktop window opens.")
    parser.add_argument("--version", action="version", version=f"hqnn-desktop {__version__}")
    sub = parser.add_subparsers(dest="command")

    c = sub.add_parser("classify", help="classify image files and folders into a CSV")
    c.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    c.add_argument("--pack", help="pack name or folder (default: pbc8, else the first pack installed)")
    c.add_argument("--models", type=_parse_models,
                   help="comma-separated: hqnn,classical,baseline (default: every model the pack has)")
    c.add_argument("--out", required=True, help="CSV file to write")
    c.add_argument("--batch-size", type=_COUNT, default=32)
    c.add_argument("--flags", action="store_true",
                   help="add a last column, flags, naming what to check about each image (models disagree, "
                        "low confidence, unlike training data, first of N pictures in the file), as the window "
                        "shows")
    _orientations_option(c)

    e = sub.add_parser("evaluate", help="score a labelled folder (one subfolder per class)")
    e.add_argument("dir", help="folder with one subfolder of images per class")
    e.add_argument("--pack", help="pack name or folder (default: pbc8, else the first pack installed)")
    e.add_argument("--models", type=_parse_models,
                   help="comma-separated: hqnn,classical,baseline (default: every model the pack has)")
    e.add_argument("--out", required=True, help="JSON report to write")
    e.add_argument("--batch-size", type=_COUNT, default=32)
    _orientations_option(e)

    sub.add_parser("packs", help="list installed model packs")

    heads = HeadConfig()  # AdaptConfig's defaults are read on the class: an instance would import torch
    t = sub.add_parser("train", help="train a pack from a labelled folder")
    t.add_argument("train_dir", help="folder with one subfolder of images per class, or a CSV list of "
                                     "labelled images (columns path,label)")
    t.add_argument("--name", required=True, help="name of the new pack")
    t.add_argument("--out", help="pack folder (default: your packs folder/NAME)")
    t.add_argument("--replace", action="store_true",
                   help="replace the pack already saved under that name or folder (without it, it is kept and "
                        "nothing is trained)")
    t.add_argument("--val-dir", help="validation folder with the same class subfolders")
    t.add_argument("--val-fraction", type=_FRACTION, default=0.15,
                   help="without --val-dir: the share of the training images set aside to score the models "
                        "(default: %(default)s)")
    t.add_argument("--group-pattern", help="regular expression whose first group names the source "
                                           "of an image (a smear, a patient): images of one group stay on the "
                                           "same side of that split, e.g. '^(P\\d+)_' for P12_cell3.jpg")
    t.add_argument("--backbone", choices=BACKBONE_NAMES,
                   help=f"default: {AdaptConfig.backbone}, or the --start-from pack's; "
                        + "; ".join(f"{k}: {v}" for k, v in BACKBONE_NOTES.items()))
    t.add_argument("--start-from", metavar="PACK",
                   help="start from this installed pack's backbone (a name or a folder) instead of the ImageNet "
                        "weights: one that already knows blood cells, to build on for your own microscope's "
                        "images (adapted further with --fine-tune, used as it is without)")
    _orientations_option(t, "orientations the pack averages when it classifies (1 as it is, 4 quarter turns, 8 "
                            "mirrored too); default: chosen on the validation images, which costs 7 more passes "
                            "over them")
    t.add_argument("--models", type=_parse_models, default=MODEL_KINDS,
                   help="comma-separated: hqnn,classical,baseline (default: all three)")
    t.add_argument("--qubits", type=_whole(MIN_QUBITS, MAX_QUBITS, " (the circuit is simulated exactly: each "
                                                                   "qubit more doubles the time and quadruples "
                                                                   "the memory)"),
                   default=heads.n_qubits, help="qubits of the circuit (default: %(default)s)")
    t.add_argument("--layers", type=_whole(1, MAX_LAYERS, " (each layer adds its gates to the simulated circuit "
                                                         "and to a hardware run's depth; the bundled packs use 1)"),
                   default=heads.layers, help="circuit layers (default: %(default)s)")
    t.add_argument("--fine-tune", action="store_true", help="adapt the backbone end to end first")
    t.add_argument("--epochs", type=_COUNT, default=AdaptConfig.epochs,
                   help="backbone adaptation epochs (with --fine-tune; default: %(default)s)")
    t.add_argument("--fine-tune-per-model", action="store_true",
                   help="after training the heads, fine-tune each model end to end with its own copy of the "
                        "backbone (classification then runs one backbone per model: about 3.3 times slower)")
    t.add_argument("--fine-tune-per-model-epochs", type=_COUNT, default=3,
                   help="epochs of that per-model fine-tuning (with --fine-tune-per-model)")
    t.add_argument("--fine-tune-per-model-lr", type=_LEARNING_RATE, default=1e-4,
                   help="learning rate of that per-model fine-tuning")
    t.add_argument("--head-epochs", type=_COUNT, default=heads.epochs,
                   help="epochs of each model's head, after a shared warm-up of the bottleneck "
                        "(default: %(default)s)")
    t.add_argument("--lr", type=_LEARNING_RATE, default=heads.lr, help="head learning rate (default: %(default)s)")
    t.add_argument("--batch-size", type=_COUNT, default=heads.batch_size,
                   help="head batch size (default: %(default)s)")
    t.add_argument("--contrastive-weight", type=_CONTRASTIVE_WEIGHT, default=heads.contrastive_weight,
                   help="weight of the supervised contrastive term added to cross-entropy; 0 turns it off "
                        "(default: %(default)s)")
    t.add_argument("--input-size", type=_whole(MIN_INPUT_SIZE, MAX_INPUT_SIZE, " pixels"),
                   default=AdaptConfig.input_size, help="image side in pixels (default: %(default)s)")
    t.add_argument("--cell-window", type=_CELL_WINDOW, metavar="FRACTION",
                   help="for photographs of whole smear fields with one white cell each: cut a square this "
                        "share of the shorter side around the most strongly stained cell before resizing, "
                        "in training and whenever the pack is used (bci4 was trained with 0.6)")
    t.add_argument("--seed", type=_whole(0), default=heads.seed,
                   help="random seed: the same seed and data give the same pack (default: %(default)s)")
    t.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: a GPU when present)")

    h = sub.add_parser("hardware", help="rerun a pack's quantum layer on IBM hardware, a fake backend or simulator")
    h.add_argument("--pack", required=True)
    h.add_argument("--backend", required=True,
                   help="an IBM device of your account (e.g. ibm_torino; credentials saved in the Hardware "
                        "tab), fake_* (calibrated noise, offline) or aer_simulator (noiseless)")
    h.add_argument("--input", nargs="+", required=True, help="image files or folders")
    h.add_argument("--labels-from-folders", action="store_true",
                   help="each --input is a folder of class subfolders; report accuracy and macro-F1")
    h.add_argument("--shots", type=_COUNT, default=4096)
    h.add_argument("--batch-size", type=_COUNT, default=64, help="images per Estimator job")
    h.add_argument("--optimization-level", type=int, default=2, choices=[0, 1, 2, 3])
    h.add_argument("--resilience-level", type=int, default=1, choices=[0, 1, 2],
                   help="0 none, 1 readout mitigation (TREX), 2 also zero-noise extrapolation")
    h.add_argument("--dd", action=argparse.BooleanOptionalAction, default=True,
                   help="dynamical decoupling on idle qubits")
    h.add_argument("--dd-sequence", default="XpXm", choices=["XX", "XpXm", "XY4"])
    h.add_argument("--twirl-gates", action=argparse.BooleanOptionalAction, default=None,
                   help="two-qubit gate twirling (default: as the resilience level decides)")
    h.add_argument("--twirl-measure", action=argparse.BooleanOptionalAction, default=None,
                   help="measurement twirling (default: as the resilience level decides)")
    h.add_argument("--yes", action="store_true", help="submit to real hardware without asking")
    h.add_argument("--out", required=True, help="JSON report to write")

    j = sub.add_parser("hardware-jobs", help="list, fetch or cancel earlier hardware runs")
    j.add_argument("action", choices=["list", "fetch", "cancel"])
    j.add_argument("run_id", nargs="?", help="run id for fetch and cancel: as listed, its first 4 or more "
                                             "characters, or the id of one of its jobs")
    j.add_argument("--out", help="with fetch: write the report of a finished run to this JSON file")

    a = sub.add_parser("hardware-account", help="save, test or forget your IBM Quantum API key")
    a.add_argument("action", choices=["save", "test", "forget", "where"])
    a.add_argument("--instance", default="", help="with save: the instance CRN (empty: any instance of the key)")
    a.add_argument("--channel", default="ibm_quantum_platform", choices=["ibm_quantum_platform", "ibm_cloud"])
    return parser


class _ProgressLine:
    """Whether a ``\r`` progress line is open on stderr, so that a message starts on a line of its own;
    and, when stderr is a log rather than a terminal, when each stage last wrote a line."""

    open = False
    logged: ClassVar[dict[str, float]] = {}
    #: seconds between progress lines written to a log (a ``\r`` line there would be one endless line)
    LOG_EVERY = 10.0

    @classmethod
    def end(cls) -> None:
        if cls.open:
            print(file=sys.stderr)
            cls.open = False


def _progress(done: int, total: int, start: float, what: str = "images") -> None:
    """One progress line, rewritten in place on a terminal; in a log, a line every
    :attr:`_ProgressLine.LOG_EVERY` seconds and one at the end of each stage."""
    now = time.time()
    rate = done / max(1e-9, now - start)
    eta = (total - done) / rate if rate > 0 else 0
    text = f"{done}/{total} {what} ({rate:.1f}/s, ETA {eta:.0f} s)"
    if sys.stderr.isatty():
        print(f"\r{text}", end="", file=sys.stderr, flush=True)
        _ProgressLine.open = True
    elif done >= total or now - _ProgressLine.logged.get(what, start) >= _ProgressLine.LOG_EVERY:
        _ProgressLine.logged[what] = now
        print(text, file=sys.stderr, flush=True)


def _load_pack(name: str | None, models: tuple[str, ...] | None, for_hardware: bool = False):
    """The pack named (or the default one) with ``models``; an unknown pack, or a model the pack was
    not trained with, is a usage error (exit 2), while a damaged pack is a failure (exit 1)."""
    from .core.packs import (
        PackError,
        default_pack_name,
        load_pack,
        read_card,
        resolve_pack,
        trained_models,
    )

    if name is None:
        name = default_pack_name()
        if name is None:
            raise UsageError("No model pack is installed; give one with --pack DIR.")
    try:
        folder = resolve_pack(name)
    except PackError as exc:
        raise UsageError(str(exc)) from exc
    try:
        return load_pack(folder, models)
    except PackError:
        try:
            card = read_card(folder)
        except PackError:
            card = None
        if card is None or not models or not (missing := [m for m in models if m not in trained_models(card)]):
            raise  # a damaged pack: the reason load_pack gave
        trained = ", ".join(trained_models(card))
        if for_hardware:
            raise UsageError(f"The pack {card['name']} has no HQNN model (it was trained with {trained} only), "
                             "so there is no quantum layer to run on hardware; choose a pack with an HQNN model "
                             "(see hqnn-desktop packs).") from None
        raise UsageError(f"The pack {card['name']} has no {' or '.join(missing)} model (it was trained with "
                         f"{trained} only); give --models {trained.replace(', ', ',')}, or leave --models out to "
                         "use every model it has.") from None


def _check_out(text: str, inputs: Sequence[str] = (), kind: str = "csv") -> Path:
    """The ``--out`` file, checked before any work, so that a slip costs neither a long run (nor QPU
    time) nor an input: it must not be a folder, an input, or named like an image (``--out a.jpg b.jpg``
    would replace a.jpg), and the folder it goes in must be writable (missing folders are created)."""
    out = Path(text)
    if not text.strip():
        raise UsageError("--out needs a file name.")
    if len(os.fsencode(out.name)) > 255:  # common file systems' limit (stat() fails beyond)
        raise UsageError(f"--out {text} cannot be written: the file name is too long (at most 255 bytes).")
    if text.endswith(("/", os.sep)) or out.is_dir():
        raise UsageError(f"--out must be a file, but {text} is a folder.")
    if text == "-":
        raise UsageError(f"the results go to a file; give --out a name such as results.{kind}.")
    if out.is_symlink():  # the results go where the link points, the file the user looks at
        out = Path(os.path.realpath(out))
    if out.exists() and not out.is_file() and not out.is_dir():
        raise UsageError(f"--out {text} is not an ordinary file (a device, pipe or socket); give a file "
                         f"name such as results.{kind}.")
    if any(os.path.realpath(out) == os.path.realpath(p) for p in inputs):
        raise UsageError(f"--out {text} is one of the inputs; give the results another file name.")
    from .core.imageio import is_image_name

    if is_image_name(out, unreadable_too=True):
        raise UsageError(f"--out {text} is named like an image; the results are a {kind.upper()} file, "
                         f"so give a name such as results.{kind}.")
    other = {"csv": ".json", "json": ".csv"}[kind]
    if out.suffix.lower() == other:
        raise UsageError(f"--out {text} is named as a {other[1:].upper()} file, but the results are a "
                         f"{kind.upper()} file; give a name such as {out.stem}.{kind}.")
    from .core.paths import unwritable_reason

    reason = unwritable_reason(out)
    if reason:
        raise UsageError(f"--out {text} cannot be written: {reason}.")
    return out


def _found_inputs(paths: Sequence[str], what: str, skipped: list[str] | None = None,
                  twice: list[tuple[str, str]] | None = None) -> list[str]:
    """The image paths behind ``paths``, or a :class:`UsageError` when not one of them exists;
    files in the folders not named like pictures go to ``skipped``, files reached twice to ``twice``."""
    from .core.inputs import iter_image_paths

    missing = [p for p in paths if not os.path.lexists(p)]
    if missing and len(missing) == len(paths):
        raise UsageError(f"Nothing to {what}: {', '.join(missing)} not found.")
    return list(iter_image_paths(paths, skipped=skipped, twice=twice))


def _skipped_note(skipped: list[str]) -> str:
    """The files a folder walk passed over, said once ('' when none)."""
    from .core.results import not_pictures_note

    return not_pictures_note(skipped, "name a file on its own")


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify into ``<out>.partial`` row by row, then rename it to ``<out>`` once complete.

    So an existing ``--out`` file is never touched by an unfinished run, and a
    ``.partial`` file next to it tells the user the last run did not finish;
    it holds only complete rows, usable as they are.
    """
    from .core.predict import Engine

    out = _check_out(args.out, args.paths)
    skipped: list[str] = []
    twice: list[tuple[str, str]] = []
    paths = _found_inputs(args.paths, "classify", skipped, twice)
    if not paths:
        print(f"hqnn-desktop classify: no images found in {', '.join(args.paths)}; nothing was classified "
              f"and {out} was not written.", file=sys.stderr)
        if note := _skipped_note(skipped):
            print(note, file=sys.stderr)
        return 1
    partial = out.with_name(out.name + ".partial")
    if partial.is_dir():
        raise UsageError(f"--out {out} cannot be written: the rows are first written to {partial}, "
                         "which is a folder. Move it or give another file name.")
    pack = _load_pack(args.pack, args.models)
    engine = Engine(pack, args.models, batch_size=args.batch_size, orientations=args.orientations)
    out.parent.mkdir(parents=True, exist_ok=True)
    tally = _Tally()
    try:
        _classify_into(partial, engine, paths, engine.models, pack.labels, tally, args.flags)
        os.replace(partial, out)
    except KeyboardInterrupt:
        _ProgressLine.end()
        print(f"Interrupted after {tally.done} of {counted(len(paths), 'image')}. {out} was not changed; "
              f"the rows finished so far are in {partial}.", file=sys.stderr)
        return 130
    except OSError as exc:
        _ProgressLine.end()
        kept = (f"the rows of the {counted(tally.done, 'image')} finished before are in {partial}"
                if partial.exists() else "no rows were written")
        print(f"hqnn-desktop classify: the results could not be written ({exc.strerror or exc}). "
              f"{out} was not changed; {kept}.", file=sys.stderr)
        return 1
    _ProgressLine.end()
    print(f"{counted(len(paths), 'image')}, {tally.unusable} not usable -> {out}", file=sys.stderr)
    from .core.results import no_colour_note, several_pictures_note, twice_note

    for note in (tally.flags_note(args.flags), several_pictures_note(tally.several), no_colour_note(tally.no_colour),
                 _skipped_note(skipped), twice_note(twice)):
        if note:
            print(note, file=sys.stderr)
    return 0


@dataclass
class _Tally:
    """Images finished and images not usable, kept up to date so an interruption can report them."""

    done: int = 0
    unusable: int = 0
    several: list = field(default_factory=list)  # results of files holding several pictures
    no_colour: list = field(default_factory=list)  # results of pictures without colour
    flagged: Counter = field(default_factory=Counter)  # images per flag (the window's words)
    n_flagged: int = 0

    def flags_note(self, column: bool) -> str:
        """How many images carry a flag, and which ('' when none): a user of the command line
        learns what the window would have shown in orange."""
        if not self.n_flagged:
            return ""
        which = "; ".join(f"{flag}: {n}" for flag, n in self.flagged.most_common())
        where = "the flags column names them" if column else "--flags adds a column naming them"
        return f"{counted(self.n_flagged, 'image')} flagged to check ({which}); {where}."


def _classify_into(partial: Path, engine, paths: list[str], models: tuple[str, ...], labels: list[str],
                   tally: _Tally, flags: bool = False) -> None:
    """Write the CSV header, then each image's rows with one unbuffered write, then fsync.

    One write per image (not a buffered text file, which flushes at arbitrary
    byte counts) is what keeps every line of a killed run's file a complete row.
    """
    from .core.results import CSV_ENCODING, csv_header, csv_text, image_flags, result_rows

    start = time.time()
    with open(partial, "wb", buffering=0) as fh:
        complete = 0  # bytes of whole rows: a failed write (disk full) is cut back to them
        try:
            _write_all(fh, csv_text([csv_header(labels, flags)]).encode(**CSV_ENCODING))
            complete = fh.tell()
            for result in engine.classify(paths):
                _write_all(fh, csv_text(result_rows(result, models, labels, flags)).encode(**CSV_ENCODING))
                complete = fh.tell()
                tally.done += 1
                tally.unusable += result.error is not None
                if result.frames > 1 and result.error is None:
                    tally.several.append(result)
                if result.no_colour:
                    tally.no_colour.append(result)
                said = image_flags(result, labels)
                tally.flagged.update(said)
                tally.n_flagged += bool(said)
                _progress(tally.done, len(paths), start)
            os.fsync(fh.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                fh.truncate(complete)
            raise


def _write_all(fh, data: bytes) -> None:
    """Write every byte (a raw write may write fewer than asked)."""
    view = memoryview(data)
    while view:
        view = view[fh.write(view):]


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score the labelled folder and write the report; exit 1 when not one image could be used,
    since a report of zeros would read as a useless model rather than unreadable files."""
    from .core.datasets import DatasetError
    from .core.evaluate import (
        absent_classes_note,
        evaluate_folder,
        passed_over_note,
        unlabelled_note,
    )
    from .core.storage import atomic_write_json

    out = _check_out(args.out, (args.dir,), kind="json")
    pack = _load_pack(args.pack, args.models)
    start = time.time()
    try:
        report = evaluate_folder(pack, args.dir, args.models or tuple(pack.heads), args.batch_size,
                                 progress=lambda d, t: _progress(d, t, start), orientations=args.orientations)
    except DatasetError as exc:
        raise UsageError(str(exc)) from exc
    _ProgressLine.end()
    n, unusable = report["n_images"], report["n_unusable"]
    if unusable < n:  # the scores first: they stay on screen even if the report cannot be written
        for m, r in report["models"].items():
            print(f"{m:10s} n={r['n']} accuracy={r['accuracy']:.4f} macro-F1={r['macro_f1']:.4f} "
                  f"ECE={r['ece']:.4f}", file=sys.stderr)
    try:
        atomic_write_json(out, report)
    except OSError as exc:
        print(f"hqnn-desktop evaluate: the report could not be written to {out} ({exc.strerror or exc})"
              + ("; the scores are above." if unusable < n else "."), file=sys.stderr)
        return 1
    if unusable == n:
        which = "the image could not" if n == 1 else f"none of the {n} images could"
        print(f"hqnn-desktop evaluate: {which} be used, so nothing was scored; the reason "
              f"{'is' if n == 1 else 'for each is'} under 'errors' in {out}.", file=sys.stderr)
        return 1
    reasons = " (reasons under 'errors' in the report)" if unusable else ""
    print(f"{counted(n, 'image')}, {unusable} not usable{reasons} -> {out}", file=sys.stderr)
    for note in (unlabelled_note(report), passed_over_note(report), absent_classes_note(report)):
        if note:
            print(note, file=sys.stderr)
    return 0


def _nested(card: dict, *keys: str):
    """``card[k1][k2]...``, or None where a level is missing or not a table (cards come from anywhere)."""
    value = card
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def cmd_packs(args: argparse.Namespace) -> int:
    """List the usable packs, then each damaged one on a line with the reason."""
    from .core.orientations import averaged_scores, card_orientations
    from .core.orientations import describe as describe_orientations
    from .core.packs import card_crop, scan_packs

    packs, damaged = scan_packs(verify=True)
    if not packs and not damaged:
        print("No model packs installed.")
        return 0
    for info in packs:
        card = info.card
        val = _nested(card, "metrics", "validation", "models")
        f1 = ", ".join(f"{m} {v['macro_f1']:.4f}" for m, v in (val if isinstance(val, dict) else {}).items()
                       if isinstance(v, dict) and isinstance(v.get("macro_f1"), int | float))
        print(f"{card['name']}  [{info.source}]  {info.path}")
        print(f"  dataset:  {_nested(card, 'data', 'name') or _nested(card, 'data', 'description') or '?'}")
        print(f"  backbone: {card['backbone']} @ {card['input_size']} px, {counted(card['n_qubits'], 'qubit')} x "
              f"{counted(card['layers'], 'layer')}")
        crop = card_crop(card)
        if crop is not None:
            print(f"  input:    {crop.describe()}")
        turns = card_orientations(card)
        print(f"  orientations: {turns} ({describe_orientations(turns)})")
        print(f"  labels:   {', '.join(card['labels'])}")
        if averaged := averaged_scores(card):
            listed = ", ".join(f"{m} {v:.4f}" for m, v in averaged.items())
            print(f"  validation macro-F1: {listed} (with its {turns} orientations; as it is: {f1 or '?'})")
        else:
            print(f"  validation macro-F1: {f1 or 'not recorded'}")
    for bad in damaged:
        print(f"{bad.path.name}  [{bad.source}]  {bad.path}")
        print(f"  damaged, cannot be used: {bad.reason}")
    return 0


def _check_device(requested: str | None) -> None:
    """Refuse a device that torch cannot use here, before any image is read."""
    if requested is None:
        return
    import torch

    unknown = UsageError(f"--device {requested} is not a device: use cpu, cuda or cuda:N (N a GPU number), "
                         "or leave --device out to use a GPU when there is one.")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise unknown from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {requested}: PyTorch finds no CUDA GPU on this computer; "
                             "use --device cpu or leave --device out.")
        if device.index is not None and device.index >= count:
            raise UsageError(f"--device {requested}: there is no GPU number {device.index}; this computer has "
                             f"{count} (cuda:0 to cuda:{count - 1}).")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {requested}: no Apple GPU can be used here; use --device cpu.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise unknown


def _check_backbone(name: str) -> None:
    """Build the backbone with its ImageNet weights once, so missing weights are reported before
    any image is read rather than after the whole dataset has been decoded."""
    from .core.backbones import BackboneWeightsError, build_backbone

    try:
        build_backbone(name)
    except BackboneWeightsError as exc:
        raise UsageError(str(exc)) from exc


#: what each training stage is called on the progress line
_STAGE_WORDS = {"load_train": "training images read", "load_val": "validation images read",
                "adapt": "backbone training steps", "adapt_epoch": "backbone epochs",
                "features": "images through the backbone", "heads": "epochs of the warm-up and the heads",
                "fine_tune_model": "per-model fine-tuning steps", "fine_tune_model_epoch": "per-model epochs",
                "orientations": "turned copies of the validation images scored"}


def _epoch_line(stage: str, metrics: dict) -> str:
    """One finished epoch in words: which model, the training error and the validation scores."""
    from .core.kinds import MODEL_TITLES

    model = metrics.get("model")
    who = ("backbone" if stage == "adapt_epoch" else
           "bottleneck warm-up" if model == "warm-up" else MODEL_TITLES.get(model, str(model)))
    parts = [f"{who}, epoch {metrics.get('epoch', '?')}: loss {metrics.get('loss', float('nan')):.3f}"]
    for key, words in (("val_accuracy", "validation accuracy"), ("val_macro_f1", "validation macro-F1")):
        if key in metrics:
            parts.append(f"{words} {metrics[key]:.3f}")
    return ", ".join(parts)


def cmd_train(args: argparse.Namespace) -> int:
    """Check the name, the pack folder, the device and the backbone weights, then train and save the pack."""
    from .core.build import (
        PackRecipe,
        left_out_note,
        orientations_note,
        train_pack,
        validation_note,
        weak_pack_warning,
    )
    from .core.datasets import DatasetError
    from .core.packs import (
        CARD,
        PackError,
        bundled_packs_dir,
        check_pack_destination,
        check_pack_name,
        read_card,
        resolve_pack,
        starting_backbone,
        user_packs_dir,
    )
    from .core.train import Callbacks

    if args.out is not None and not args.out.strip():
        raise UsageError("--out needs a folder name.")
    try:
        check_pack_name(args.name)
        out = Path(args.out) if args.out is not None else user_packs_dir() / args.name
        check_pack_destination(out, (args.train_dir, args.val_dir))
    except PackError as exc:
        raise UsageError(str(exc)) from exc
    bundled = bundled_packs_dir().resolve()
    if out.resolve() == bundled or bundled in out.resolve().parents:
        raise UsageError(f"{out} holds the packs that come with the app, which are never replaced; "
                         "leave --out out to save the pack in your packs folder.")
    if (out / CARD).is_file() and not args.replace:
        raise UsageError(f"A pack is already saved in {out}; give another --name (or --out) to keep it, "
                         "or add --replace to replace it.")
    _check_device(args.device)
    start_pack = None
    if args.start_from is not None:  # checked (card, weights, backbone) before any image is read
        try:
            start_pack = resolve_pack(args.start_from)
            args.backbone = args.backbone or read_card(start_pack)["backbone"]
            starting_backbone(start_pack, args.backbone)
        except PackError as exc:
            raise UsageError(str(exc)) from exc
    else:
        args.backbone = args.backbone or AdaptConfig.backbone
        _check_backbone(args.backbone)
    recipe = PackRecipe(
        train_dir=args.train_dir, name=args.name, val_dir=args.val_dir, val_fraction=args.val_fraction,
        group_pattern=args.group_pattern, models=args.models, fine_tune=args.fine_tune,
        fine_tune_per_model=args.fine_tune_per_model, fine_tune_per_model_epochs=args.fine_tune_per_model_epochs,
        fine_tune_per_model_lr=args.fine_tune_per_model_lr,
        adapt=AdaptConfig(backbone=args.backbone, epochs=args.epochs, seed=args.seed,
                          bottleneck=args.qubits, input_size=args.input_size),
        heads=HeadConfig(n_qubits=args.qubits, layers=args.layers, epochs=args.head_epochs, lr=args.lr,
                         batch_size=args.batch_size, contrastive_weight=args.contrastive_weight,
                         seed=args.seed),
        device=args.device, cell_window=args.cell_window, start_pack=str(start_pack) if start_pack else None,
        orientations=args.orientations)
    start = time.time()

    def progress(stage: str, done: int, total: int, metrics: dict) -> None:
        _progress(done, total, start, what=_STAGE_WORDS.get(stage, stage))
        if stage in ("adapt_epoch", "fine_tune_model_epoch") or (stage == "heads" and done % max(1, total // 30) == 0):
            _ProgressLine.end()
            print(_epoch_line(stage, metrics), file=sys.stderr)

    try:
        path = train_pack(recipe, out, Callbacks(progress=progress))
    except DatasetError as exc:
        raise UsageError(str(exc)) from exc
    _ProgressLine.end()
    print(f"pack written to {path}", file=sys.stderr)
    card = read_card(path)
    for line in (validation_note(card), orientations_note(card), weak_pack_warning(card), left_out_note(card)):
        if line:
            print(line, file=sys.stderr)
    return 0


def _confirm(prompt: str) -> bool:
    """Ask on the terminal; no answer (end of input) means no."""
    try:
        return input(prompt).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def cmd_hardware(args: argparse.Namespace) -> int:
    """Check the report file, the inputs and the backend name first: a slip found after the jobs ran
    would cost QPU time and leave a run recorded for nothing."""
    from .core.datasets import DatasetError, scan_class_folders
    from .core.storage import atomic_write_json
    from .hardware.options import RunOptions
    from .hardware.rerun import (
        BackendError,
        NothingToRun,
        backend_kind,
        check_backend_name,
        execute,
        fake_backend_names,
        plan_run,
    )
    from .hardware.service import ServiceError, connect

    out = _check_out(args.out, args.input, kind="json")
    if args.labels_from_folders:
        not_folders = [p for p in args.input if not os.path.isdir(p)]
        if not_folders:
            raise UsageError(f"With --labels-from-folders each --input must be a folder of class folders: "
                             f"{', '.join(not_folders)} is not a folder.")
        paths = []
    else:
        paths = _found_inputs(args.input, "run")
        if not paths:
            raise UsageError(f"No images found in {', '.join(args.input)}; nothing was run.")
    try:
        check_backend_name(args.backend)
    except BackendError as exc:  # no window to pick from here: name every fake device
        raise UsageError(f"{exc}\nFake devices: {', '.join(fake_backend_names())}.") from exc
    pack = _load_pack(args.pack, ("hqnn",), True)
    truth = None
    if args.labels_from_folders:
        truth = []
        try:
            for folder in args.input:
                files = scan_class_folders(folder, pack.labels)
                paths += [str(p) for p in files.paths]
                truth += list(files.targets)
        except DatasetError as exc:
            raise UsageError(str(exc)) from exc
    options = RunOptions(shots=args.shots, batch_size=args.batch_size, optimization_level=args.optimization_level,
                         resilience_level=args.resilience_level, dynamical_decoupling=args.dd,
                         dd_sequence=args.dd_sequence, twirl_gates=args.twirl_gates, twirl_measure=args.twirl_measure)
    real = backend_kind(args.backend) == "real"
    try:
        plan = plan_run(pack, paths, args.backend, truth, options, service=connect() if real else None)
    except (BackendError, ServiceError) as exc:
        raise UsageError(str(exc)) from exc
    except NothingToRun as exc:
        print(f"hqnn-desktop hardware: {exc}", file=sys.stderr)
        return 1
    if real:
        print(plan.summary(), file=sys.stderr)
        if not args.yes and not _confirm("Submit to IBM Quantum? [y/N] "):
            print("Nothing submitted.", file=sys.stderr)
            return 1
    try:
        report = execute(plan, on_job=lambda job, k, n: print(f"job {k}/{n} {job.job_id()} submitted",
                                                              file=sys.stderr),
                         on_record=lambda run_id: print(
                             f"hardware run {run_id} recorded (if you stop waiting, hqnn-desktop hardware-jobs fetch "
                             f"{run_id} --out FILE.json gets its results later)", file=sys.stderr))
    except ServiceError as exc:
        print(f"hqnn-desktop hardware: {exc}", file=sys.stderr)
        return 1
    try:
        atomic_write_json(out, report)
    except OSError as exc:  # the jobs ran and are recorded: the report can be rebuilt from the record
        print(f"hqnn-desktop hardware: the report could not be written to {out} ({exc.strerror or exc}). The "
              f"run is recorded; write its report later with: hqnn-desktop hardware-jobs fetch "
              f"{report['run_id']} --out FILE.json", file=sys.stderr)
        return 1
    unusable = len(report["unusable"])
    print(f"{counted(report['n_images'] + unusable, 'image')}, {unusable} not usable; {report['n_images']} run in "
          f"{counted(report['n_jobs'], 'job')}, agreement {report['agreement']:.3f} -> {out}", file=sys.stderr)
    if "macro_f1_drop" in report:
        print(f"macro-F1 simulated {report['simulated']['macro_f1']:.4f}, {args.backend} "
              f"{report['hardware']['macro_f1']:.4f}", file=sys.stderr)
    return 0


def cmd_hardware_jobs(args: argparse.Namespace) -> int:
    import datetime

    from .core.storage import atomic_write_json
    from .hardware.jobs import FINAL, AmbiguousRunId, DamagedRecord, JobStore
    from .hardware.rerun import cancel_run, refresh_run, report_for
    from .hardware.service import ServiceError

    if args.out is not None and args.action != "fetch":
        raise UsageError("--out goes with fetch: hardware-jobs fetch RUN --out report.json")
    out = _check_out(args.out, kind="json") if args.out is not None else None
    store = JobStore()
    if args.action == "list":
        records, damaged = store.scan()
        if not records and not damaged:
            print("No hardware runs are recorded yet (hqnn-desktop hardware starts one).", file=sys.stderr)
        for problem in damaged:
            print(problem, file=sys.stderr)
        for r in records:
            when = datetime.datetime.fromtimestamp(r.created).strftime("%Y-%m-%d %H:%M")
            images = "image " if r.n_images == 1 else "images"  # the column stays aligned
            print(f"{r.run_id}  {when}  {r.backend:16s} {r.pack:10s} {r.n_images:5d} {images}  "
                  f"{counted(len(r.jobs), 'job')}  {r.status}")
        return 0
    if not args.run_id:
        raise UsageError(f"hardware-jobs {args.action} needs a run id (see hardware-jobs list).")
    try:
        if args.action == "cancel":
            ended = all(job.status in FINAL for job in store.get(args.run_id).jobs)
            record = cancel_run(store, args.run_id)
            print(f"{record.run_id}: {record.status}"
                  + (" (the run had already ended; nothing was cancelled)" if ended else ""), file=sys.stderr)
            return 0
        record = refresh_run(store, args.run_id)
        print(f"{record.run_id}: {record.status}", file=sys.stderr)
        if out is not None and record.complete:
            atomic_write_json(out, report_for(record))
            print(f"report written to {out}", file=sys.stderr)
        elif out is not None:
            print(f"The run is not complete, so no report was written to {out}; fetch it again later.",
                  file=sys.stderr)
        return 0
    except KeyError:
        raise UsageError(f"No hardware run {args.run_id} is recorded (see hardware-jobs list).") from None
    except AmbiguousRunId as exc:
        raise UsageError(str(exc)) from None
    except (ServiceError, DamagedRecord) as exc:
        print(f"hqnn-desktop hardware-jobs: {exc}", file=sys.stderr)
        return 1


def _read_api_key() -> str:
    """The key typed at a hidden prompt, or piped in (a script, a password manager): read quietly
    then, instead of getpass's warning that the input might be echoed."""
    if not sys.stdin.isatty():
        if sys.stderr.isatty():  # a console that is not a terminal (an IDE's): still say what is awaited
            print("IBM Quantum API key (it will be shown as you type): ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip()
    import getpass

    try:
        return getpass.getpass("IBM Quantum API key (not shown): ").strip()
    except EOFError:
        return ""


def cmd_hardware_account(args: argparse.Namespace) -> int:
    from .hardware.credentials import Credentials, CredentialsError, CredentialStore
    from .hardware.service import ServiceError, test_connection

    store = CredentialStore()
    try:
        if args.action == "save":
            token = _read_api_key()
            if not token:
                raise UsageError("No API key was typed (the input ended first). Run this command in a terminal "
                                 "and paste the key when asked, or pipe the key into it.")
            store.save(Credentials(token, args.instance, args.channel))
            print(f"Saved in {store.where()}.", file=sys.stderr)
        elif args.action == "forget":
            had = store.load() is not None
            store.forget()
            print("IBM Quantum credentials removed." if had else "No IBM Quantum credentials were saved; nothing "
                  "to remove.", file=sys.stderr)
        elif args.action == "where":
            print(f"{'Saved' if store.load() else 'Nothing saved; a key would be kept'} in {store.where()}.")
        else:
            for b in test_connection():
                print(f"{b.name:16s} {b.num_qubits:4d} qubits  {b.pending_jobs if b.pending_jobs is not None else '?':>6} "
                      f"pending  {'operational' if b.operational else 'not operational'} ({b.status})")
    except (CredentialsError, ServiceError) as exc:
        print(f"hqnn-desktop hardware-account: {exc}", file=sys.stderr)
        return 1
    return 0


def _window_argument_problem(argv: list[str]) -> str | None:
    """Why ``argv``, which starts with no command, cannot be meant for the window; None to open it.

    The window takes image files and folders. A mistyped command (``clasify``)
    would otherwise open it, or abort on a server without a display, so a bare
    word that is neither a command nor an existing file is refused, as are the
    options that belong to commands. Names that look like paths (a suffix or a
    separator) still go to the window, which reports missing files itself.
    """
    first = argv[0]
    option = next((a for a in argv if a.startswith("-")), None)
    if os.path.lexists(first) or Path(first).suffix or any(s in first for s in (os.sep, os.altsep, "/") if s):
        if option is None:
            return None
        return (f"{option} is an option of a command; the window takes only image files and folders. "
                f"For example: hqnn-desktop classify {first} --pack pbc8 --out results.csv")
    close = difflib.get_close_matches(first, SUBCOMMANDS, n=1)
    guess = f" (did you mean '{close[0]}'?)" if close else ""
    return (f"unknown command '{first}'{guess}, and there is no file or folder of that name. "
            f"Commands: {', '.join(SUBCOMMANDS)}; or give image files or folders to open them in the window.")


def main(argv: list[str] | None = None) -> int:
    """Run a command, or open the window; Ctrl+C at any moment ends with status 130 and no traceback."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130


def _window_pack(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--pack NAME`` (or ``--pack=NAME``) given to the window, and the other arguments."""
    if argv and argv[0] == "--pack" and len(argv) > 1:
        return argv[1], argv[2:]
    if argv and argv[0].startswith("--pack="):
        return argv[0].split("=", 1)[1], argv[1:]
    return None, argv


def _main(argv: list[str]) -> int:
    pack, window_argv = _window_pack(argv)
    if pack is not None and window_argv[:1] and window_argv[0] in SUBCOMMANDS:
        build_parser().error(f"put --pack after the command: hqnn-desktop {window_argv[0]} ... --pack {pack}")
    if not window_argv or (window_argv[0] not in SUBCOMMANDS and not window_argv[0].startswith("-")):
        problem = _window_argument_problem(window_argv) if window_argv else None
        if problem is None:
            return _start_gui(window_argv, pack)
        build_parser().error(problem)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        end = argv.index("--") if "--" in argv else len(argv)  # after --, every word is a file name
        dashed = [a for a in argv[:end] if a.startswith("-") and a != "-" and os.path.exists(a)]
        options = [a for a in argv[end + 1:] if a.startswith("-") and not os.path.exists(a)]
        if exc.code == 2 and dashed:
            print(f"(A file whose name starts with '-' is read as an option: write ./{dashed[0]}, "
                  "or put -- before the files.)", file=sys.stderr)
        elif exc.code == 2 and options:
            print(f"(Everything after -- is read as a file name, so {options[0]} there is not taken as an "
                  "option: put the options before --.)", file=sys.stderr)
        raise
    if args.command is None:
        parser.error(f"choose a command: {', '.join(SUBCOMMANDS)}")
    handlers = {"classify": cmd_classify, "evaluate": cmd_evaluate, "packs": cmd_packs,
                "train": cmd_train, "hardware": cmd_hardware, "hardware-jobs": cmd_hardware_jobs,
                "hardware-account": cmd_hardware_account}
    from .core.imageio import ImageError
    from .core.packs import PackError

    try:
        return handlers[args.command](args)
    except UsageError as exc:
        _ProgressLine.end()
        print(f"hqnn-desktop {args.command}: {exc}", file=sys.stderr)
        return 2
    except (PackError, ImageError, ValueError, OSError) as exc:
        _ProgressLine.end()
        print(f"hqnn-desktop {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted; files already written are intact.", file=sys.stderr)
        return 130


NO_DISPLAY = ("hqnn-desktop: no display found, so the window cannot open. On a server, use the commands "
              "(hqnn-desktop classify ..., see hqnn-desktop --help), or start it inside a desktop session.")


def no_display_problem() -> str | None:
    """Why the window cannot open here, or None: on Linux with neither an X nor a Wayland display (a
    server, an ssh session) Qt would abort with its advice to reinstall the application. A platform
    chosen in QT_QPA_PLATFORM (offscreen, vnc, eglfs...) is Qt's to judge."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM", "").strip():
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return NO_DISPLAY


def _start_gui(paths: list[str], pack: str | None = None) -> int:
    """Open the window, once there is a display to open it on (checked before Qt is even imported)."""
    if problem := no_display_problem():
        print(problem, file=sys.stderr)
        return 2
    from .gui.app import run

    return run(paths, pack)


if __name__ == "__main__":
    sys.exit(main())
