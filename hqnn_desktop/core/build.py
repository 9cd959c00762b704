"""Train a complete pack from labelled folders: the one entry point of the CLI and the Training tab.

Steps: scan the class folders; split validation (a second folder, or a grouped
fraction); decode images; optionally adapt the backbone (stage 1); extract
features once; train the requested heads on identical features (stage 3);
optionally fine-tune each model end to end with its own backbone copy (stage 4);
fit each model's temperature on the validation logits (:mod:`core.calibration`);
score them on validation with calibrated probabilities; write a pack whose card
records everything.
"""

from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from . import ood
from .augment import AugmentConfig
from .backbones import get_spec
from .calibration import calibrate_or_skip, calibrated_proba, head_logits, record_calibration
from .cell_crop import CellCrop, is_grey
from .circuits import ANSATZ_ID, circuit_parameter_count
from .datasets import (
    DatasetError,
    LabelledFiles,
    check_classes_present,
    load_images,
    read_manifest,
    scan_dataset,
    shared_pictures,
    split_validation,
    training_reference,
)
from .heads import MODEL_KINDS
from .metrics import classification_report
from .orientations import CHOICES, RULE, SEEN, choose, views
from .packs import check_pack_destination, save_pack, sha256_file, starting_backbone
from .train import (
    AdaptConfig,
    Callbacks,
    HeadConfig,
    adapt_backbone,
    extract_features,
    fine_tune_models,
    initial_extractor,
    train_heads,
)
from .wording import counted


@dataclass
class PackRecipe:
    """Everything the Training tab and ``hqnn-desktop train`` let a user choose."""

    train_dir: str
    name: str
    val_dir: str | None = None
    val_fraction: float = 0.15
    group_pattern: str | None = None
    models: tuple[str, ...] = MODEL_KINDS
    fine_tune: bool = False
    #: stage 4: fine-tune every model end to end with its own backbone (packs then hold one per model)
    fine_tune_per_model: bool = False
    fine_tune_per_model_epochs: int = 3
    fine_tune_per_model_lr: float = 1e-4
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    heads: HeadConfig = field(default_factory=HeadConfig)
    device: str | None = None
    description: str = ""
    #: a manifest of verified cells (a review's corrections) added to the training images
    corrections: str | None = None
    #: for whole smear fields: first cut a window on the stained white cell, this fraction of the
    #: image's shorter side (:mod:`core.cell_crop`); None uses the whole image
    cell_window: float | None = None
    #: a pack folder whose backbone the run starts from instead of the ImageNet weights
    start_pack: str | None = None
    #: orientations the pack averages (:mod:`core.orientations`); None: chosen on the validation images
    orientations: int | None = None


def _load(files: LabelledFiles, size: int, crop: CellCrop | None, callbacks: Callbacks,
          stage: str, left_out: list[tuple[Path, str]]) -> tuple[np.ndarray, np.ndarray]:
    """The usable images and their classes; each unusable one goes to ``left_out`` with its reason."""
    images, errors = load_images(files.paths, size, crop=crop,
                                 progress=lambda d, t: (callbacks.check(), callbacks.progress(stage, d, t, {})))
    left_out.extend((p, e) for p, e in zip(files.paths, errors) if e is not None)
    ok = np.array([e is None for e in errors], dtype=bool)
    return images[ok], np.asarray(files.targets)[ok]


#: Files a card names as examples of those left out of training (all are counted).
LEFT_OUT_EXAMPLES = 5


def left_out_record(unusable: list[tuple[Path, str]], passed_over: list[tuple[Path, str]]) -> dict:
    """What the card says about the files of the dataset folders that training did not use."""
    return {"n_unusable": len(unusable), "n_passed_over": len(passed_over),
            "examples": [{"path": str(p), "reason": why} for p, why in (unusable + passed_over)[:LEFT_OUT_EXAMPLES]]}


def left_out_note(card: dict) -> str:
    """The sentence about the files training did not use ('' when it used them all or the card
    predates the record): a user who meant them to count should know."""
    record = (card.get("training") or {}).get("left_out") or {}
    unusable, passed = record.get("n_unusable", 0), record.get("n_passed_over", 0)
    if not unusable and not passed:
        return ""
    parts = []
    if unusable:
        parts.append(f"{unusable} picture{'s' if unusable > 1 else ''} that could not be used")
    if passed:
        parts.append(f"{passed} other item{'s' if passed > 1 else ''} in the folders")
    example = record["examples"][0]
    return (f"Left out of training: {' and '.join(parts)} (for example {Path(example['path']).name}: "
            f"{example['reason']}). The card lists the first {LEFT_OUT_EXAMPLES}.")


def no_better_than_guessing(card: dict) -> str:
    """Which of a new pack's models, in words ("HQNN does", "HQNN and Baseline do"), score no
    better on validation than always answering the validation images' most common class; "" if none.

    A pack trained on too few images, or with a learning rate that made the loss explode,
    can come out useless while every step succeeded.
    """
    from .kinds import MODEL_TITLES

    weak = []
    for kind, report in card.get("metrics", {}).get("validation", {}).get("models", {}).items():
        rows = [sum(row) for row in report.get("confusion_matrix", [])]
        if sum(rows) and report.get("accuracy", 0.0) <= max(rows) / sum(rows):
            weak.append(MODEL_TITLES.get(kind, kind))
    if not weak:
        return ""
    return (" and ".join(weak) + " do") if len(weak) > 1 else f"{weak[0]} does"


def flattened_to_the_limit(card: dict) -> list[str]:
    """The models whose calibration had to divide their scores by the largest temperature allowed:
    wildly overconfident on validation (a learning rate far too high, say), their confidences mean little."""
    from .calibration import T_BOUNDS
    from .kinds import MODEL_TITLES

    return [MODEL_TITLES.get(kind, kind) for kind, model in card.get("models", {}).items()
            if model.get("temperature", 1.0) >= 0.99 * T_BOUNDS[1]]


#: Fewer validation images than this in a class make its scores too coarse to trust (one image
#: moves its recall by a fifth or more).
FEW_VALIDATION_IMAGES = 5


def validation_note(card: dict) -> str:
    """Where a new pack's validation figures come from, in words ('' when the card does not say):
    a share set aside silently would surprise a user counting their training images."""
    training = card.get("training") or {}
    n_train, n_val, fraction = training.get("n_train"), training.get("n_val"), training.get("val_fraction")
    if not isinstance(n_val, int) or not isinstance(n_train, int):
        return ""
    if fraction is None:
        return f"Scored on the {counted(n_val, 'validation image')} given; trained on {n_train}."
    grouped = f", whole groups of '{training['group_pattern']}' at a time" if training.get("group_pattern") else ""
    return (f"{n_val} of the {n_train + n_val} usable training images ({fraction:.0%} asked) "
            f"{'was' if n_val == 1 else 'were'} set aside to score "
            f"the models{grouped}; they were trained on the other {n_train}.")


def weak_pack_warning(card: dict) -> str:
    """The warning the Training tab and ``hqnn-desktop train`` give about a useless new pack, or one
    whose validation figures rest on too few images to mean much ('' if none)."""
    parts = []
    per_class = [sum(row) for row in next(iter(card.get("metrics", {}).get("validation", {}).get("models", {})
                                               .values()), {}).get("confusion_matrix", [])]
    if per_class and min(per_class) < FEW_VALIDATION_IMAGES:
        parts.append(f"Warning: its validation figures rest on {counted(sum(per_class), 'image')} "
                     f"({min(per_class)} of the class with fewest), so they can be far from what it does on new "
                     "images; more validation images per class give figures to trust.")
    if weak := no_better_than_guessing(card):
        parts.append(f"{'On' if parts else 'Warning: on'} the validation images, {weak} no better than always answering the most "
                     "common class. More images per class, or more head epochs, may help; a very high "
                     "learning rate can also cause it.")
    if flat := flattened_to_the_limit(card):
        parts.append(f"{'Warning: ' if not parts else ''}{' and '.join(flat)} "
                     f"{'were' if len(flat) > 1 else 'was'} so overconfident on the validation images that "
                     f"calibration flattened {'their' if len(flat) > 1 else 'its'} confidences as far as it can: "
                     "they mean little.")
    return " ".join(parts)


def _check_apart(train_dir: str | Path, val_dir: str | Path) -> None:
    """Validation images must not be training images: scores on images the models learnt from
    look excellent and mean nothing."""
    train, val = Path(train_dir).resolve(), Path(val_dir).resolve()
    if train.is_file():  # a list of images: they may lie anywhere, the folders say nothing
        return
    if train == val or train in val.parents or val in train.parents:
        raise DatasetError(f"The validation folder {val_dir} overlaps the training images in {train_dir}, so "
                           "the models would be scored on images they learnt from. Give a separate validation "
                           "folder, or none to set a share of the training images aside.")


def train_pack(recipe: PackRecipe, out_dir: str | Path, callbacks: Callbacks | None = None) -> Path:
    """Run the whole protocol and write the pack to ``out_dir``; returns its path.

    ``out_dir`` is checked first, so a place the pack may not go is refused before
    the training time is spent rather than when the pack is saved.
    """
    check_pack_destination(out_dir, (recipe.train_dir, recipe.val_dir, recipe.corrections))
    callbacks = callbacks or Callbacks()
    cfg, start = recipe.adapt, None
    if recipe.start_pack:
        weights, start = starting_backbone(recipe.start_pack, cfg.backbone)
        cfg = replace(cfg, start_from=str(weights))
    spec = get_spec(cfg.backbone)
    train_files = scan_dataset(recipe.train_dir)
    corrections = []
    if Path(recipe.train_dir).is_file():
        corrections.append(manifest_record(recipe.train_dir, len(train_files)))
    if recipe.corrections:
        extra = read_manifest(recipe.corrections, train_files.labels, training_reference(recipe.train_dir))
        corrections.append(manifest_record(recipe.corrections, len(extra)))
        train_files = extra.plus(train_files)  # a correction's class wins over its folder's
    passed_over = list(train_files.skipped)  # (a split keeps only the images)
    check_classes_present(train_files.labels, train_files.targets, "training")
    if recipe.val_dir:
        _check_apart(recipe.train_dir, recipe.val_dir)
        val_files = scan_dataset(recipe.val_dir, train_files.labels, training_reference(recipe.train_dir),
                                 role="validation")
        passed_over += val_files.skipped
        if shared := shared_pictures(train_files, val_files):
            raise DatasetError(
                f"{counted(len(shared), 'validation picture')} {'is' if len(shared) == 1 else 'are'} also "
                f"training pictures (for example {shared[0][0]}, the same picture as {shared[0][1]}), so the "
                "models would be scored on images they learnt from. Give validation pictures apart from the "
                "training ones, or none to set a share of the training pictures aside.")
    else:
        train_files, val_files = split_validation(train_files, recipe.val_fraction, cfg.seed,
                                                  recipe.group_pattern)
    labels = train_files.labels
    crop = CellCrop(recipe.cell_window) if recipe.cell_window else None
    unusable: list[tuple[Path, str]] = []
    x_train, y_train = _load(train_files, cfg.input_size, crop, callbacks, "load_train", unusable)
    x_val, y_val = _load(val_files, cfg.input_size, crop, callbacks, "load_val", unusable)
    for part, targets in (("training", y_train), ("validation", y_val)):
        check_classes_present(labels, targets, part)
    checkpoint = Path(out_dir).with_name(f".{Path(out_dir).name}.adapt.ckpt")
    if recipe.fine_tune:
        # resumable: a cancelled or crashed run continues from its last finished epoch
        adapted, adapt_history = adapt_backbone(x_train, y_train, len(labels), cfg, recipe.device,
                                                checkpoint=checkpoint, callbacks=callbacks,
                                                val=(x_val, y_val))
        extractor = adapted.extractor
    else:
        extractor, adapt_history = initial_extractor(cfg), []
    f_train = extract_features(extractor, x_train, device=recipe.device, callbacks=callbacks)
    f_val = extract_features(extractor, x_val, device=recipe.device, callbacks=callbacks)
    heads, histories = train_heads(f_train, y_train, len(labels), recipe.heads, recipe.models,
                                   val=(f_val, y_val), callbacks=callbacks)
    model_extractors, per_model_history = {}, {}
    model_checkpoints = {kind: checkpoint.with_name(f".{Path(out_dir).name}.{kind}.ckpt") for kind in heads}
    if recipe.fine_tune_per_model:
        model_extractors, heads, per_model_history = fine_tune_models(
            extractor, heads, x_train, y_train, per_model_config(recipe), recipe.device,
            checkpoints=model_checkpoints, callbacks=callbacks, val=(x_val, y_val))
    val_logits = {}
    for kind, head in heads.items():
        features = (extract_features(model_extractors[kind], x_val, device=recipe.device, callbacks=callbacks)
                    if kind in model_extractors else f_val)
        val_logits[kind] = head_logits(head, features)
    split = {"val_fraction": None, "group_pattern": None} if recipe.val_dir else {
        "val_fraction": recipe.val_fraction, "group_pattern": recipe.group_pattern}
    calibration = calibrate_or_skip(val_logits, y_val, {"folder": str(recipe.val_dir or recipe.train_dir), **split})
    temperature = {kind: fit["temperature"] for kind, fit in calibration["models"].items()}
    metrics = {kind: classification_report(y_val, calibrated_proba(z, temperature[kind]), labels)
               for kind, z in val_logits.items()}
    card = make_card(
        name=recipe.name, labels=labels, backbone=cfg.backbone, input_size=cfg.input_size, crop=crop,
        n_qubits=recipe.heads.n_qubits, layers=recipe.heads.layers, feature_dim=spec.feature_dim,
        models=tuple(heads), training={
            "train_dir": str(recipe.train_dir), "val_dir": recipe.val_dir,
            "val_fraction": None if recipe.val_dir else recipe.val_fraction,
            "group_pattern": recipe.group_pattern, "corrections": corrections,
            "fine_tune_backbone": recipe.fine_tune, "start_from": start,
            "adapt": {**asdict(cfg), "augment": asdict(cfg.augment)} if recipe.fine_tune else None,
            "heads": asdict(recipe.heads), "seed": cfg.seed,
            "fine_tune_per_model": asdict(per_model_config(recipe)) if recipe.fine_tune_per_model else None,
            "n_train": len(y_train), "n_val": len(y_val), "left_out": left_out_record(unusable, passed_over),
            "history": {"adapt": adapt_history, "heads": histories, "fine_tune_per_model": per_model_history},
        },
        validation={"split": "val_dir" if recipe.val_dir else "fraction", "models": metrics},
        data={"description": recipe.description or f"User dataset {Path(recipe.train_dir).name}",
              "class_counts": train_files.class_counts(),
              "colourless_share": round(float(np.mean([is_grey(x) for x in x_train])), 4)},
    )
    record_calibration(card, calibration)
    card["orientations"] = _orientations_record(recipe.orientations, x_val, y_val, labels, heads, temperature,
                                                val_logits, (extractor, model_extractors), recipe.device, callbacks)
    path = save_pack(out_dir, card, extractor, heads, ood=ood.fit(f_train, y_train, f_val),
                     model_extractors=model_extractors)
    for path_done in (checkpoint, *model_checkpoints.values()):
        path_done.unlink(missing_ok=True)
    return path


def _orientations_record(requested: int | None, x_val: np.ndarray, y_val: np.ndarray, labels: list[str],
                         heads: dict, temperature: dict[str, float], val_logits: dict[str, np.ndarray],
                         extractors: tuple, device: str | None, callbacks: Callbacks) -> dict:
    """The card's ``orientations``: each model's validation macro-F1 with 1, 4 and 8 orientations
    averaged (with a count given: 1 and that count), and the count :func:`choose` picks, or the one
    given. ``extractors`` is (the shared backbone, each model's own backbone where it has one)."""
    shared_extractor, own = extractors
    counts = CHOICES if requested is None else sorted({1, requested})
    proba = {kind: [calibrated_proba(z, temperature[kind])] for kind, z in val_logits.items()}
    quiet = Callbacks(cancelled=callbacks.cancelled)  # the stage's own progress is per orientation
    for done, view in enumerate(islice(views(x_val, max(counts)), 1, None), 1):  # one turned copy at a time
        shared = (extract_features(shared_extractor, view, device=device, callbacks=quiet)
                  if any(kind not in own for kind in heads) else None)
        for kind, head in heads.items():
            feats = extract_features(own[kind], view, device=device, callbacks=quiet) if kind in own else shared
            proba[kind].append(calibrated_proba(head_logits(head, feats), temperature[kind]))
        callbacks.progress("orientations", done, max(counts) - 1, {})
    scores = {str(c): {kind: round(float(classification_report(y_val, np.mean(p[:c], axis=0), labels)["macro_f1"]),
                                   4) for kind, p in proba.items()} for c in counts}
    return {"count": choose(scores) if requested is None else requested, "validation_macro_f1": scores,
            "rule": RULE if requested is None else "given when the pack was trained"}


def orientations_note(card: dict) -> str:
    """What the new pack does with orientations and why, from its validation figures ('' when the card
    says nothing about it)."""
    entry = card.get("orientations")
    if not isinstance(entry, dict) or not isinstance(entry.get("validation_macro_f1"), dict):
        return ""
    mean = {int(c): sum(f.values()) / len(f) for c, f in entry["validation_macro_f1"].items() if f}
    count = entry.get("count", 1)
    if count > 1 and count in mean and 1 in mean:
        return (f"It averages each picture's probabilities over {count} orientations, {SEEN[count]} "
                f"(mean validation macro-F1 {mean[count]:.3f} against {mean[1]:.3f} as it is).")
    tried = [c for c in mean if c > 1]
    if count == 1 and tried and 1 in mean:
        best = max(tried, key=mean.get)
        verdict = "did worse" if mean[best] < mean[1] else "gained too little"
        return (f"Averaging turned and mirrored copies {verdict} on the validation images "
                f"({mean[best]:.3f} with {best} against {mean[1]:.3f}), so it classifies each picture as it is.")
    return ""


def per_model_config(recipe: PackRecipe) -> AdaptConfig:
    """Stage 4 settings: stage 1's augmentation, batch and seed, with the per-model epochs and
    learning rate (a smaller one: the heads are already trained and should not be thrown off)."""
    return replace(recipe.adapt, epochs=recipe.fine_tune_per_model_epochs, lr=recipe.fine_tune_per_model_lr)


def manifest_record(manifest: str | Path, count: int) -> dict:
    """What a card records about corrections it was trained on: the file, how many images, its sha256."""
    return {"manifest": str(Path(manifest).resolve()), "count": int(count),
            "sha256": sha256_file(Path(manifest))}


def make_card(*, name: str, labels: list[str], backbone: str, input_size: int, n_qubits: int,
              layers: int, feature_dim: int, models: tuple[str, ...], training: dict,
              validation: dict, data: dict, extra: dict | None = None, crop: CellCrop | None = None) -> dict:
    """Assemble a model card (the weight checksums are added by ``save_pack``)."""
    from .heads import parameter_counts

    spec = get_spec(backbone)
    counts = parameter_counts(feature_dim, n_qubits, layers, len(labels))
    card = {
        "name": name,
        "labels": [label.lower() for label in labels],
        "backbone": backbone,
        "feature_dim": feature_dim,
        "input_size": input_size,
        "preprocessing": {"decode": "RGB, EXIF orientation applied, alpha composited on white",
                          **({"crop": crop.to_card()} if crop else {}),
                          "resize": f"stretch to {input_size}x{input_size}, bilinear"},
        "normalization": {"mean": list(spec.mean), "std": list(spec.std)},
        "n_qubits": n_qubits,
        "layers": layers,
        "circuit": {"ansatz_id": ANSATZ_ID, "encoding": "RY(pi/2 * (tanh(bottleneck) + 1)) per qubit",
                    "ansatz": "per layer: RY, RZ on every qubit, then CRX ring (i -> i+1); identity at zero",
                    "readout": "<Z> per qubit",
                    "trainable_parameters": circuit_parameter_count(n_qubits, layers)},
        "models": {kind: {"parameters": counts[kind]} for kind in models},
        "training": training,
        "metrics": {"validation": validation},
        "data": data,
        "intended_use": "Research and teaching only; not a medical device and not for diagnosis.",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "software": {"python": platform.python_version(), "torch": torch.__version__},
    }
    if extra:
        card.update(extra)
    return card


__all__ = ["AdaptConfig", "AugmentConfig", "HeadConfig", "PackRecipe", "make_card", "train_pack"]
