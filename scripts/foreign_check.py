"""Show a pack cells from another dataset: how many does it get right, how many does it flag?

    python scripts/foreign_check.py --pack bci4 --data ../shared/data/pbc/val --per-class 40

``--data`` is a labelled folder of another laboratory's images; only its class folders
named like the pack's classes are used (``--per-class`` images each, drawn with
``random.seed(--seed)`` from the sorted file names), so the pack could in principle
classify every one. A pack worth trusting either gets such cells right or flags them as
unlike its training data; one that does neither is confidently wrong without a warning.
Prints, per model, the accuracy on those cells, and the share the pack flags (the flag is
the pack's, shared by its models). Choosing a pack on this uses no test image of its own
dataset.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from hqnn_desktop.core.imageio import is_image_name
from hqnn_desktop.core.packs import load_pack, resolve_pack
from hqnn_desktop.core.predict import Engine


def foreign_sample(folder: Path, labels: list[str], per_class: int, seed: int) -> list[tuple[str, int]]:
    """(path, class index) for up to ``per_class`` images of each class folder the pack knows."""
    random.seed(seed)
    sample = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if sub.name.lower() not in labels:
            continue
        files = sorted(str(p) for p in sub.iterdir() if p.is_file() and is_image_name(p))
        sample += [(p, labels.index(sub.name.lower())) for p in random.sample(files, min(per_class, len(files)))]
    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", required=True, help="pack name or folder")
    parser.add_argument("--data", type=Path, required=True, help="another dataset's labelled folder")
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pack = load_pack(resolve_pack(args.pack))
    sample = foreign_sample(args.data, pack.labels, args.per_class, args.seed)
    if not sample:
        raise SystemExit(f"No class folder of {args.data} is named like the classes of {args.pack}.")
    results = list(Engine(pack).classify([p for p, _ in sample]))
    truth = np.array([t for _, t in sample])
    usable = np.array([r.error is None for r in results])
    report = {
        "pack": args.pack, "data": str(args.data), "per_class": args.per_class, "seed": args.seed,
        "n_images": int(usable.sum()),
        "classes": sorted({pack.labels[t] for t in truth}),
        "flagged_unlike_training": float(np.mean([bool(r.unlike_training) for r, ok in zip(results, usable) if ok])),
        "accuracy": {kind: float(np.mean([r.proba[kind].argmax() == t
                                          for r, t, ok in zip(results, truth, usable) if ok]))
                     for kind in pack.heads},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
