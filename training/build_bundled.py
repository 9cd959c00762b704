"""Stage 3 for a bundled pack: ablation, seeds, paired test, and the pack itself.

Input: an adaptation run (``gpu_adapt.py`` output: adapted backbone and
training-image features) and validation features computed on this machine by
``extract.py`` through the app's own decode path. Steps:

1. ablation on validation: n in {4, 6, 8} qubits x {1, 2} layers, three models, seed 0;
2. the chosen (n, L) (best HQNN validation macro-F1; ties go to the smaller
   circuit) with and without the supervised-contrastive term;
3. the chosen setting over seeds 0, 1, 2: mean and std per model, McNemar
   HQNN vs Classical Matched on the same validation images for every seed;
4. the pack (seed-0 heads) with a card recording all of it.

    python training/build_bundled.py pbc8 --adapt training/runs/pbc_adapt \
        --val training/runs/pbc_adapt/val_orig.npz --reencoded training/runs/pbc_adapt/val_webp80.npz
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from hqnn_desktop.core import ood
from hqnn_desktop.core.backbones import load_state_file
from hqnn_desktop.core.build import make_card
from hqnn_desktop.core.cell_crop import CellCrop
from hqnn_desktop.core.heads import MODEL_KINDS
from hqnn_desktop.core.metrics import classification_report, macro_f1, mcnemar, mean_std
from hqnn_desktop.core.packs import save_pack
from hqnn_desktop.core.storage import atomic_write_json
from hqnn_desktop.core.train import FeatureExtractor, HeadConfig, predict_proba, train_heads

ROOT = Path(__file__).resolve().parents[1]

DATASETS = {
    "pbc8": {
        "name": "PBC (peripheral blood cells), 8 classes",
        "source": "Acevedo A., Merino A., Alferez S., Molina A., Boldu L., Rodellar J. A dataset of "
                  "microscopic peripheral blood cell images for development of automatic recognition "
                  "systems. Data in Brief 30 (2020) 105474. doi:10.17632/snkd93bnjr.1",
        "licence": "CC BY 4.0",
        "train": "pbc/train (11,976 images; WebP q80 re-encodings of the original JPEGs)",
        "validation": "pbc/val (1,730 original JPEGs); split fixed by sha256 of the original bytes",
        "notes": "CellaVision DM96 images of normal cells, Hospital Clinic of Barcelona.",
    },
    "bci4": {
        "name": "Blood Cell Images (Kaggle, BCCD-derived), 4 classes",
        "source": "P. Mooney, Kaggle 'Blood Cell Images' (dataset2-master), built from the BCCD "
                  "dataset (Shenggan, 2017)",
        "licence": "MIT (BCCD)",
        "train": "TRAIN minus the validation groups (augmentations of 226 original photographs of 211 smear fields)",
        "validation": "15% of TRAIN split by overlap group (file-name prefix g<GGGGG>), so no smear "
                      "field is on both sides; TEST_SIMPLE (71 originals) as a second check",
        "notes": "Six overlap groups of the official split straddle TRAIN and TEST, so the official "
                 "TEST shares fields with 216 TRAIN images; targets are still reported on it.",
    },
}


def load_train(adapt: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    feats = np.concatenate([np.load(f) for f in sorted(glob.glob(str(adapt / "features_train_*.npy")),
                                                       key=lambda s: int(Path(s).stem.rsplit("_", 1)[1]))])
    record = json.loads((adapt / "adapt.json").read_text())
    return feats.astype(np.float32), np.load(adapt / "targets_train.npy"), record


def score(heads: dict, feats: np.ndarray, y: np.ndarray, n_classes: int) -> dict:
    return {k: macro_f1(y, predict_proba(h, feats).argmax(1), n_classes) for k, h in heads.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pack", choices=sorted(DATASETS))
    ap.add_argument("--adapt", type=Path, required=True)
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--reencoded", type=Path, help="validation features of WebP re-encoded copies")
    ap.add_argument("--check", type=Path, help="second check set (BCI TEST_SIMPLE)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--qubits", type=int, nargs="+", default=[4, 6, 8])
    ap.add_argument("--layers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--contrastive", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=ROOT / "resources" / "packs")
    args = ap.parse_args()

    t_start = time.time()
    f_train, y_train, adapt_record = load_train(args.adapt)
    labels = list(adapt_record["labels"])
    n_classes = len(labels)
    val = np.load(args.val)
    f_val, y_val = val["features"], val["targets"]
    assert list(val["labels"]) == labels, "validation labels differ from training labels"
    base = HeadConfig(epochs=args.epochs)
    results: dict = {"pack": args.pack, "adaptation": adapt_record, "head_config": asdict(base)}

    ablation = []
    for n in args.qubits:
        for L in args.layers:
            t0 = time.time()
            cfg = replace(base, n_qubits=n, layers=L)
            heads, _ = train_heads(f_train, y_train, n_classes, cfg)
            row = {"n_qubits": n, "layers": L, "val_macro_f1": score(heads, f_val, y_val, n_classes),
                   "seconds": time.time() - t0}
            print(json.dumps(row), flush=True)
            ablation.append(row)
    best = max(ablation, key=lambda r: (round(r["val_macro_f1"]["hqnn"], 4), -r["n_qubits"], -r["layers"]))
    chosen = replace(base, n_qubits=best["n_qubits"], layers=best["layers"])
    results["ablation"] = ablation

    heads_c, _ = train_heads(f_train, y_train, n_classes, replace(chosen, contrastive_weight=args.contrastive))
    contrastive = {"weight": args.contrastive, "val_macro_f1": score(heads_c, f_val, y_val, n_classes),
                   "without": best["val_macro_f1"]}
    keep = contrastive["val_macro_f1"]["hqnn"] >= best["val_macro_f1"]["hqnn"] + 0.001
    contrastive["kept"] = keep
    print("contrastive", json.dumps(contrastive), flush=True)
    results["contrastive"] = contrastive
    if keep:
        chosen = replace(chosen, contrastive_weight=args.contrastive)

    per_seed, seed0 = [], None
    for seed in args.seeds:
        heads, history = train_heads(f_train, y_train, n_classes, replace(chosen, seed=seed))
        probas = {k: predict_proba(h, f_val) for k, h in heads.items()}
        preds = {k: p.argmax(1) for k, p in probas.items()}
        row = {"seed": seed,
               "val": {k: classification_report(y_val, probas[k], labels) for k in heads},
               "mcnemar_hqnn_vs_classical": mcnemar(y_val, preds["hqnn"], preds["classical"])}
        if args.reencoded is not None:
            re = np.load(args.reencoded)
            assert (re["paths"] == val["paths"]).all()
            row["val_reencoded_macro_f1"] = score(heads, re["features"], re["targets"], n_classes)
        if args.check is not None:
            ck = np.load(args.check)
            row["check"] = {k: classification_report(ck["targets"], predict_proba(h, ck["features"]), labels)
                            for k, h in heads.items()}
        print(json.dumps({"seed": seed, "macro_f1": {k: v["macro_f1"] for k, v in row["val"].items()},
                          "reencoded": row.get("val_reencoded_macro_f1"),
                          "mcnemar": row["mcnemar_hqnn_vs_classical"]}), flush=True)
        per_seed.append(row)
        if seed == args.seeds[0]:
            seed0 = (heads, history)
    summary = {k: {"macro_f1": mean_std([r["val"][k]["macro_f1"] for r in per_seed]),
                   "accuracy": mean_std([r["val"][k]["accuracy"] for r in per_seed])} for k in MODEL_KINDS}
    if args.reencoded is not None:
        for k in MODEL_KINDS:
            summary[k]["macro_f1_reencoded"] = mean_std([r["val_reencoded_macro_f1"][k] for r in per_seed])
    if args.check is not None:
        for k in MODEL_KINDS:
            summary[k]["check_macro_f1"] = mean_std([r["check"][k]["macro_f1"] for r in per_seed])
    results.update({"chosen": asdict(chosen), "seeds": per_seed, "summary": summary,
                    "seconds": time.time() - t_start})
    atomic_write_json(ROOT / "training" / "results" / f"{args.pack}.json", results)

    heads, history = seed0
    extractor = FeatureExtractor(adapt_record["config"]["backbone"], pretrained=False)
    extractor.load_state_dict(load_state_file(str(args.adapt / "backbone.safetensors")))
    first = per_seed[0]
    validation = {
        "split": DATASETS[args.pack]["validation"],
        "models": first["val"],
        "mcnemar_hqnn_vs_classical": first["mcnemar_hqnn_vs_classical"],
        "over_seeds": summary,
    }
    if "val_reencoded_macro_f1" in first:
        validation["reencoded_webp80_macro_f1"] = first["val_reencoded_macro_f1"]
    if "check" in first:
        validation["test_simple"] = first["check"]
    card = make_card(
        name=args.pack, labels=labels, backbone=adapt_record["config"]["backbone"],
        input_size=adapt_record["config"]["input_size"],
        crop=CellCrop.from_card(adapt_record["crop"]) if adapt_record.get("crop") else None, n_qubits=chosen.n_qubits, layers=chosen.layers,
        feature_dim=f_train.shape[1], models=MODEL_KINDS,
        training={"protocol": "backbone adapted end to end with an 8-d tanh bottleneck (stage 1), "
                              "then the three heads trained on identical frozen features (stage 3)",
                  "adapt": adapt_record["config"], "adapt_device": adapt_record.get("device"),
                  "heads": asdict(chosen), "seed": chosen.seed, "n_train": len(y_train),
                  "ablation": ablation, "contrastive": contrastive,
                  "history": {"adapt": adapt_record["history"], "heads": history},
                  "rebuild": "see training/README.md"},
        validation=validation,
        data={**DATASETS[args.pack], "labels_are": "class-folder names, lower case"},
        extra={"title": DATASETS[args.pack]["name"],
               "limits": "Trained on one laboratory's images (PBC: CellaVision DM96, one hospital; "
                         "BCI: a few hundred smear fields). Expect lower accuracy on other stains, "
                         "scanners, magnifications or abnormal cells absent from training."},
    )
    path = save_pack(args.out / args.pack, card, extractor, heads, fp16_backbone=True,
                     ood=ood.fit(f_train, y_train, f_val))
    print("pack", path, f"{time.time() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
