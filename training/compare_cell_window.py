"""Does centring on the stained cell help on Blood Cell Images? A quick check with frozen features.

Frozen ImageNet EfficientNet-Lite0 features (224 px) of 1,500 TRAIN images from the training side of
the grouped split and 700 from its validation side, with and without the cell window
(``core.cell_crop``) of several sizes; a logistic regression fitted on the first, scored on the
second (macro-F1) and on TEST_SIMPLE. Chosen on validation only; TEST_SIMPLE is reported.

    python training/compare_cell_window.py --sides 0.5,0.6,0.75 > training/results/cell_window_frozen.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from hqnn_desktop.core.cell_crop import CellCrop
from hqnn_desktop.core.datasets import scan_class_folders, split_validation
from hqnn_desktop.core.imageio import load_model_input
from hqnn_desktop.core.train import FeatureExtractor, extract_features

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bci"
LABELS = ["eosinophil", "lymphocyte", "monocyte", "neutrophil"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sides", default="0.5,0.6,0.75", help="window sizes to try (fractions of the shorter side)")
    ap.add_argument("--n-train", type=int, default=1500)
    ap.add_argument("--n-val", type=int, default=700)
    args = ap.parse_args()
    train, val = split_validation(scan_class_folders(DATA / "TRAIN", LABELS), 0.15, 0, r"^g(\d+)_")
    check = scan_class_folders(DATA / "TEST_SIMPLE", LABELS)
    rng = np.random.default_rng(0)
    ti = rng.choice(len(train.paths), args.n_train, replace=False)
    vi = rng.choice(len(val.paths), args.n_val, replace=False)
    sets = {"train": ([train.paths[i] for i in ti], np.asarray(train.targets)[ti]),
            "val": ([val.paths[i] for i in vi], np.asarray(val.targets)[vi]),
            "test_simple": (check.paths, np.asarray(check.targets))}
    extractor = FeatureExtractor("efficientnet_lite0", pretrained=True)
    rows = []
    for side in [None, *(float(s) for s in args.sides.split(","))]:
        t0 = time.time()
        crop = CellCrop(side) if side else None
        feats = {name: extract_features(extractor, np.stack([load_model_input(p, 224, crop) for p in paths]),
                                        batch_size=32, device="cpu")
                 for name, (paths, _) in sets.items()}
        clf = LogisticRegression(C=0.5, max_iter=3000).fit(feats["train"], sets["train"][1])
        row = {"cell_window": side, "seconds": round(time.time() - t0, 1)}
        for name in ("val", "test_simple"):
            row[f"{name}_macro_f1"] = float(f1_score(sets[name][1], clf.predict(feats[name]), average="macro"))
        rows.append(row)
    print(json.dumps({"what": __doc__.split("\n\n")[1].replace("\n", " "), "n_train": args.n_train,
                      "n_val": args.n_val, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
