"""Compare ways of flagging images "unlike training data" on a bundled pack.

In-distribution images are the pack's validation images; foreign images are another dataset's,
shown to the same backbone (features from ``training/extract.py``). For each method the
threshold is the 99th percentile of the validation distances (as in the app), and the record
gives the share of foreign images flagged and the area under the ROC curve.

    cd training && python compare_ood.py --adapt runs/bci_cell --val runs/bci_cell/val_group.npz \
        --foreign pbc_by_bci.npz --check runs/bci_cell/test_simple.npz --name "bci4, PBC images"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from build_bundled import load_train
from sklearn.metrics import roc_auc_score

from hqnn_desktop.core import ood


def compare(f_train: np.ndarray, y_train: np.ndarray, f_val: np.ndarray, f_foreign: np.ndarray,
            directions: list[int], f_check: np.ndarray | None = None) -> list[dict]:
    truth = np.r_[np.zeros(len(f_val)), np.ones(len(f_foreign))]
    candidates = [("cosine", ood.fit(f_train, y_train, f_val, ood.COSINE))]
    for k in directions:
        for method in (ood.MAHALANOBIS, ood.BOTH):
            candidates.append((f"{method}, {k} directions",
                               ood.fit(f_train, y_train, f_val, method, max_directions=k)))
    rows = []
    for name, model in candidates:
        d_val, d_foreign = model.distances(f_val), model.distances(f_foreign)
        row = {"method": name, "foreign_flagged": float((d_foreign > model.threshold).mean()),
               "validation_flagged": float((d_val > model.threshold).mean()),
               "auroc": float(roc_auc_score(truth, np.r_[d_val, d_foreign]))}
        if f_check is not None:  # same dataset, images of other originals: ideally ~1 % flagged
            row["check_flagged"] = float(model.flags(f_check).mean())
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapt", type=Path, required=True, help="adaptation run with the training features")
    ap.add_argument("--val", type=Path, required=True, help="validation features (.npz)")
    ap.add_argument("--foreign", type=Path, required=True, help="features of another dataset's images (.npz)")
    ap.add_argument("--check", type=Path, help="features of unseen images of the pack's own dataset (.npz)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--directions", default="128,256,512")
    args = ap.parse_args()
    f_train, y_train, _ = load_train(args.adapt)
    rows = compare(f_train, y_train, np.load(args.val)["features"], np.load(args.foreign)["features"],
                   [int(k) for k in args.directions.split(",")],
                   np.load(args.check)["features"] if args.check else None)
    print(json.dumps({"case": args.name, "n_foreign": len(np.load(args.foreign)["features"]),
                      "results": rows}, indent=2))


if __name__ == "__main__":
    main()
