"""Add the "unlike training data" statistics to an existing pack without retraining it.

The model comes from the adaptation run's training features, the threshold from
validation features (the same ``core.ood.fit`` that ``build_bundled.py`` calls
for new packs). The weights are rewritten unchanged; the card gains ``ood``.

    python training/add_ood.py resources/packs/pbc8 --adapt training/runs/pbc_adapt \
        --val training/runs/pbc_adapt/val_orig.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from build_bundled import load_train

from hqnn_desktop.core import ood
from hqnn_desktop.core.packs import load_pack, save_pack


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pack", type=Path)
    ap.add_argument("--adapt", type=Path, required=True)
    ap.add_argument("--val", type=Path, required=True)
    args = ap.parse_args()
    pack = load_pack(args.pack)
    f_train, y_train, _ = load_train(args.adapt)
    stats = ood.fit(f_train, y_train, np.load(args.val)["features"])
    card = {k: v for k, v in pack.card.items() if k not in ("files", "weights_dtype")}
    save_pack(args.pack, card, pack.extractor, pack.heads, fp16_backbone=True, ood=stats,
              model_extractors=pack.model_extractors)
    print(args.pack, stats.method, "threshold", round(stats.threshold, 4))


if __name__ == "__main__":
    main()
