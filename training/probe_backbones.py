"""Compare adapted backbones, or weight averages of them, by a linear probe on validation data.

Building a pack from a backbone (features of every image, the n x L ablation, three
seeds) takes about 20 minutes here; this answers the narrower question "which of these
extractors gives better features?" in a few minutes each, on the folder written by
``prepare_gpu_data.py``: extract features of a fixed subset of the training split and of
the whole validation split, fit one logistic regression (the same for every candidate)
and score it on validation. TEST_SIMPLE ('check') is reported, never used to choose.

A candidate is ``NAME=FILE`` or ``NAME=FILE+FILE+...``: several files are averaged weight
by weight (a "model soup"; meaningful only for backbones adapted from the same start).

    python training/probe_backbones.py --data .gpudata/bci_cell \\
        shipped=resources/packs/bci4/backbone.safetensors soup=a.safetensors+b.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_adapt import load_prepared


def averaged_state(files: list[str]) -> dict:
    """The weight-by-weight mean of several extractor state files (integer buffers from the first)."""
    from hqnn_desktop.core.backbones import load_state_file

    states = [load_state_file(f) for f in files]
    return {k: (sum(s[k].float() for s in states) / len(states)) if v.is_floating_point() else v
            for k, v in states[0].items()}


def probe(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], n_classes: int) -> dict:
    """Macro-F1 and accuracy on ``val`` of a standardised logistic regression fitted on ``train``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from hqnn_desktop.core.metrics import macro_f1

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    model.fit(*train)
    pred = model.predict(val[0])
    return {"accuracy": float((pred == val[1]).mean()), "macro_f1": macro_f1(val[1], pred, n_classes)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--train-every", type=int, default=4, help="probe on every k-th training image")
    ap.add_argument("candidates", nargs="+", help="NAME=FILE or NAME=FILE+FILE+... (averaged)")
    args = ap.parse_args()

    from hqnn_desktop.core.train import FeatureExtractor, extract_features

    index, images = load_prepared(args.data)
    split, targets = np.array(index["split"]), np.array(index["targets"])
    subsets = {"train": np.flatnonzero(split == "train")[::args.train_every],
               "val": np.flatnonzero(split == "val"), "check": np.flatnonzero(split == "check")}
    results = []
    for spec in args.candidates:
        name, _, files = spec.partition("=")
        started = time.time()
        extractor = FeatureExtractor(args.backbone, pretrained=False)
        extractor.load_state_dict(averaged_state(files.split("+")))
        feats = {k: extract_features(extractor, images[ix], batch_size=128, device="cpu").astype(np.float32)
                 for k, ix in subsets.items() if len(ix)}
        train = (feats["train"], targets[subsets["train"]])
        scores = {k: probe(train, (feats[k], targets[subsets[k]]), len(index["labels"]))
                  for k in ("val", "check") if k in feats}
        results.append({"name": name, "files": files.split("+"), "scores": scores,
                        "seconds": time.time() - started})
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    json.dump({"data": str(args.data), "n": {k: len(v) for k, v in subsets.items()}, "candidates": results},
              sys.stdout, indent=2)


if __name__ == "__main__":
    main()
