"""Fine-tune a pack's heads on a review's corrections and save the result as a new user pack.

Fine-tuning starts from an existing pack, because the data a bundled pack was
trained on is not shipped: features come from the pack's own backbone (each
model's own one in packs fine-tuned per model), every head starts from the
pack's weights and is trained a few epochs on the corrections (optionally with a
labelled folder or another manifest added), bottleneck included, because a
confusion between two classes is often in the code itself, which a frozen
bottleneck could not fix. The new pack's card says which corrections it used
(manifest path, count, sha256) and keeps the base pack's figures apart.

Calibration (:mod:`core.calibration`): with validation images the temperatures
are refitted on them, since the heads have moved; without (or where those images
cannot calibrate), the base pack's temperatures are carried over (refitting on
the corrections the heads were just trained on would make them over-confident),
and the card says so.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .build import left_out_record, manifest_record
from .calibration import (
    calibrate_or_skip,
    calibrated_proba,
    head_logits,
    record_calibration,
    temperature_of,
)
from .datasets import DatasetError, load_images, read_manifest, scan_dataset
from .metrics import classification_report
from .orientations import card_orientations
from .packs import HEADS_FILE, load_pack, read_card, save_pack, trained_models
from .train import Callbacks, HeadConfig, continue_heads, extract_features


@dataclass
class FineTuneRecipe:
    """Fine-tune the heads of ``pack_dir`` on corrections and save the result as ``name``."""

    pack_dir: str
    manifest: str
    name: str
    #: more labelled data trained on with the corrections: a folder of class folders or a manifest
    extra: str | None = None
    #: labelled images to measure the new pack on (its card's validation figures)
    val: str | None = None
    epochs: int = 30
    lr: float = 0.01
    batch_size: int = 32
    seed: int = 0
    device: str | None = None


def _images(pack, files, left_out: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The usable listed images and their classes; each unusable one (moved, deleted, damaged since
    it was verified) goes to ``left_out`` with its reason, for the card and the user to see."""
    images, errors = load_images(files.paths, pack.input_size, crop=pack.crop)
    ok = np.array([e is None for e in errors], dtype=bool)
    if left_out is not None:
        left_out.extend((p, e) for p, e in zip(files.paths, errors) if e is not None)
    if not ok.any():
        raise DatasetError("None of the listed images could be read.")
    return images[ok], np.asarray(files.targets)[ok]


def _train_each_backbone(pack, train: tuple[np.ndarray, np.ndarray], val: tuple | None, cfg: HeadConfig,
                         callbacks: Callbacks, device: str | None) -> tuple[dict, dict]:
    """Continue every head on the features of its own backbone (shared by most packs, one per
    model in packs fine-tuned per model); returns histories and validation logits per model."""
    histories, logits = {}, {}
    for extractor in {id(pack.extractor_for(k)): pack.extractor_for(k) for k in pack.heads}.values():
        heads = {k: h for k, h in pack.heads.items() if pack.extractor_for(k) is extractor}
        x = extract_features(extractor, train[0], device=device, callbacks=callbacks)
        v = (extract_features(extractor, val[0], device=device, callbacks=callbacks), val[1]) if val else None
        histories.update(continue_heads(heads, x, train[1], cfg, val=v, callbacks=callbacks))
        if v is not None:
            logits.update({k: head_logits(h, v[0]) for k, h in heads.items()})
    return histories, logits


def fine_tune_pack(recipe: FineTuneRecipe, out_dir: str | os.PathLike,
                   callbacks: Callbacks | None = None) -> Path:
    """Fine-tune every head of a pack on corrections; write a new pack to ``out_dir``."""
    callbacks = callbacks or Callbacks()
    models = trained_models(read_card(Path(recipe.pack_dir)))
    pack = load_pack(recipe.pack_dir, models)
    files = read_manifest(recipe.manifest, pack.labels)
    records = [manifest_record(recipe.manifest, len(files))]
    if recipe.extra:
        extra = scan_dataset(recipe.extra, pack.labels, role="extra training data")
        if Path(recipe.extra).is_file():
            records.append(manifest_record(recipe.extra, len(extra)))
        files = files.plus(extra)
    unusable: list = []
    train = _images(pack, files, unusable)
    val = _images(pack, scan_dataset(recipe.val, pack.labels, role="validation")) if recipe.val else None
    card = pack.card
    cfg = HeadConfig(n_qubits=int(card["n_qubits"]), layers=int(card["layers"]), epochs=recipe.epochs,
                     lr=recipe.lr, batch_size=recipe.batch_size, warmup_epochs=0, seed=recipe.seed,
                     freeze_bottleneck=False)
    histories, val_logits = _train_each_backbone(pack, train, val, cfg, callbacks, recipe.device)
    y = train[1]
    new_card = copy.deepcopy(card)
    for key in ("files", "weights_dtype", "ood"):
        new_card.pop(key, None)
    new_card["name"] = recipe.name
    new_card.pop("title", None)
    if "orientations" in card:  # the base pack's choice stands; its figures were the base pack's
        new_card["orientations"] = {"count": card_orientations(card), "carried_over_from": card["name"]}
    new_card["training"] = {
        "fine_tuned_from": {"pack": card["name"], "heads_sha256": card["files"][HEADS_FILE]["sha256"]},
        "corrections": records, "extra": recipe.extra, "val": recipe.val,
        "heads": asdict(cfg), "seed": recipe.seed, "n_train": len(y),
        "left_out": left_out_record(unusable, list(files.skipped)),
        "history": {"heads": histories}, "base_training": card.get("training"),
    }
    if val:
        base = {k: temperature_of(card, k) for k in val_logits}
        record_calibration(new_card, calibrate_or_skip(val_logits, val[1], {"folder": str(recipe.val)}, base))
    else:
        new_card["calibration"] = {"carried_over_from": card["name"], "base": card.get("calibration"),
                                   "reason": "no validation images given; the base pack's temperatures are kept"}
    reports = {k: classification_report(val[1], calibrated_proba(z, temperature_of(new_card, k)), pack.labels)
               for k, z in val_logits.items()}
    new_card["metrics"] = {
        "validation": {"split": "val" if val else "none given", "models": reports},
        "base_pack_validation": card.get("metrics", {}).get("validation"),
    }
    new_card["data"] = {"description": f"{card['name']} fine-tuned on {len(y)} verified cells",
                        "class_counts": files.class_counts(), "base": card.get("data"),
                        "colourless_share": (card.get("data") or {}).get("colourless_share", 0.0)}
    new_card["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    fp16 = card.get("weights_dtype", {}).get("backbone", "float16") == "float16"
    return save_pack(out_dir, new_card, pack.extractor, pack.heads, fp16_backbone=fp16, ood=pack.ood,
                     model_extractors=pack.model_extractors)
