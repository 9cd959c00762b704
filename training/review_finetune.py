"""Does fine-tuning a pack on a review's corrections help, and does it forget? A record on real images.

Splits a labelled folder (default: the PBC validation set) in two halves by a hash
of each file name: the "smear" half is classified, reviewed by a simulated
technologist who verifies every cell with its true class, and the corrections
fine-tune the pack (``core.corrections``); the other half, never seen, measures
every model before and after. Writes a JSON record.

    python training/review_finetune.py --pack resources/packs/pbc8 --data ../shared/data/pbc/val \
        --out training/results/review_finetune_pbc8.json
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def half(path: Path) -> int:
    return hashlib.sha256(path.name.encode()).digest()[0] % 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="resources/packs/pbc8")
    parser.add_argument("--data", default="../shared/data/pbc/val")
    parser.add_argument("--out", default="training/results/review_finetune_pbc8.json")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("HQNN_DATA_DIR", tempfile.mkdtemp())

    from hqnn_desktop.core.corrections import write_manifest
    from hqnn_desktop.core.datasets import scan_class_folders
    from hqnn_desktop.core.differential import differential
    from hqnn_desktop.core.finetune import FineTuneRecipe, fine_tune_pack
    from hqnn_desktop.core.metrics import classification_report
    from hqnn_desktop.core.packs import load_pack
    from hqnn_desktop.core.predict import Engine
    from hqnn_desktop.core.review import Review
    from hqnn_desktop.core.storage import atomic_write_json

    pack = load_pack(args.pack)
    files = scan_class_folders(Path(args.data).resolve(), pack.labels)
    truth = {str(p): t for p, t in zip(files.paths, files.targets)}
    smear = [str(p) for p in files.paths if half(p) == 0]
    held_out = [str(p) for p in files.paths if half(p) == 1]

    def score(pack_dir: str) -> dict:
        engine = Engine(load_pack(pack_dir))
        results = [r for r in engine.classify(held_out) if not r.error]
        y = np.array([truth[r.path] for r in results])
        return {m: {k: v for k, v in classification_report(y, np.stack([r.proba[m] for r in results]),
                                                           pack.labels).items()
                    if k in ("n", "accuracy", "macro_f1", "per_class")} for m in engine.models}

    t0 = time.time()
    review = Review.from_results(Engine(pack).classify(smear), pack.labels, tuple(pack.heads), pack.name,
                                 folder=str(Path(args.data).resolve()) + "#smear-half")
    for path in smear:
        review.decide([path], pack.labels[truth[path]])
    diff = differential(review)
    manifest = write_manifest(review)
    before = score(args.pack)
    out_dir = Path(tempfile.mkdtemp()) / f"{pack.name}-corrected"
    fine_tune_pack(FineTuneRecipe(pack_dir=args.pack, manifest=str(manifest), name=out_dir.name,
                                  epochs=args.epochs), out_dir)
    after = score(str(out_dir))
    record = {
        "pack": pack.name, "data": str(args.data), "smear_cells": len(review.cells),
        "held_out_cells": before[next(iter(before))]["n"], "epochs": args.epochs,
        "review_agreement": diff.agreement, "review_kappa": diff.kappa,
        "corrections": {"reclassified": sum(1 for c, lab in review.verified_cells()
                                            if pack.labels[c.pred["hqnn"]] != lab),
                        "verified": diff.n_verified},
        "held_out_before": before, "held_out_after": after, "seconds": round(time.time() - t0, 1),
    }
    atomic_write_json(args.out, record)
    for m in before:
        print(f"{m}: accuracy {before[m]['accuracy']:.4f} -> {after[m]['accuracy']:.4f}, "
              f"macro-F1 {before[m]['macro_f1']:.4f} -> {after[m]['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
