"""Fit each model's temperature on a pack's validation images, print ECE and NLL before and after.

    python scripts/calibrate_pack.py --pack pbc8 --data ../shared/data/pbc/val --record
    python scripts/calibrate_pack.py --pack bci4 --data ../shared/data/bci/TRAIN \
        --val-fraction 0.15 --group-pattern '^g(\\d+)_' --record

``--data`` is a labelled folder (one subfolder per class) of validation images,
never test images. ``--val-fraction`` takes the validation part of a training
folder instead, split as ``hqnn-desktop train`` splits it (seed 0, whole groups
at a time). Logits come from the classification engine in fp32. The fit
(:mod:`hqnn_desktop.core.calibration`) is printed as JSON; ``--record`` writes
each model's temperature and the fit into the pack's card (atomically, re-read
just before writing so that nothing else in the card is lost), and refreshes the
card's recorded validation report of every model (what the Evaluate tab shows
when the pack loads) with the calibrated probabilities: same predictions, ECE and
reliability curve as the pack now behaves. Only the card changes: the weights and
their checksums stay as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hqnn_desktop.core.calibration import (
    calibrate,
    calibrated_proba,
    engine_logits,
    record_calibration,
)
from hqnn_desktop.core.datasets import scan_class_folders, split_validation
from hqnn_desktop.core.kinds import MODEL_KINDS
from hqnn_desktop.core.metrics import classification_report
from hqnn_desktop.core.packs import CARD, load_pack, read_card, resolve_pack
from hqnn_desktop.core.storage import atomic_write_json


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", required=True, help="pack name or folder")
    parser.add_argument("--data", type=Path, required=True, help="validation folder, one subfolder per class")
    parser.add_argument("--val-fraction", type=float,
                        help="use the validation split of a training folder (as `hqnn-desktop train` splits it)")
    parser.add_argument("--group-pattern", help="regular expression naming the group of a file (split by group)")
    parser.add_argument("--device", help="cpu or cuda (default: cpu)")
    parser.add_argument("--record", action="store_true", help="write the temperatures into the pack's card")
    args = parser.parse_args()
    pack_dir = resolve_pack(args.pack)
    card = read_card(pack_dir)
    models = tuple(k for k in MODEL_KINDS if k in card["models"])
    files = scan_class_folders(args.data, card["labels"])
    if args.val_fraction:
        _, files = split_validation(files, args.val_fraction, seed=0, group_pattern=args.group_pattern)
    kept, logits, errors = engine_logits(load_pack(pack_dir, models), [str(p) for p in files.paths], models,
                                         precision="fp32", device=args.device)
    targets = np.asarray(files.targets)[kept]
    record = calibrate(logits, targets, {
        "folder": str(args.data), "val_fraction": args.val_fraction, "group_pattern": args.group_pattern,
        "n_unusable": len(errors), "precision": "fp32"})
    print(json.dumps(record, indent=2))
    for kind, fit in record["models"].items():
        print(f"{kind:>9}: T={fit['temperature']:.4f}  ECE {fit['ece_before']:.4f} -> {fit['ece_after']:.4f}  "
              f"NLL {fit['nll_before']:.4f} -> {fit['nll_after']:.4f}", file=sys.stderr)
    if args.record:
        card = record_calibration(read_card(pack_dir), record)
        reports = card.setdefault("metrics", {}).setdefault("validation", {}).setdefault("models", {})
        for kind, fit in record["models"].items():
            reports[kind] = classification_report(targets, calibrated_proba(logits[kind], fit["temperature"]),
                                                  card["labels"])
        atomic_write_json(pack_dir / CARD, card)
        print(f"recorded in {pack_dir / CARD}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
