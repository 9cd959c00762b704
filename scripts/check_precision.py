"""Check a pack in bfloat16 against fp32 on labelled validation images, and record the verdict.

The engine uses bf16 autocast only for packs whose card holds a passed check
(same prediction on >= 99.5 % of images for every model, macro-F1 within
0.002; see hqnn_desktop/core/runtime.py). Run it on a machine whose processor or
GPU computes bf16 natively (elsewhere bf16 is emulated and very slow):

    python scripts/check_precision.py --pack pbc8 --data ../shared/data/pbc/val [--device cuda] [--record]
    python scripts/check_precision.py --pack bci4 --data ../shared/data/bci/TRAIN \
        --val-fraction 0.15 --group-pattern '^g(\\d+)_' --record

``--val-fraction`` checks the validation part of a training folder, split as
the training command splits it (same seed, same grouping). ``--per-class N``
checks N images per class only (a quick look, not a verdict to record). The
record says whether bf16 was native or emulated: emulated bf16 rounds the same
way (bf16 operands, fp32 accumulation) and only runs slower.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from hqnn_desktop.core.datasets import LabelledFiles, scan_class_folders, split_validation
from hqnn_desktop.core.evaluate import evaluate_folder
from hqnn_desktop.core.kinds import MODEL_KINDS
from hqnn_desktop.core.packs import load_pack, read_card, resolve_pack
from hqnn_desktop.core.runtime import BF16_MAX_F1_DELTA, BF16_MIN_AGREEMENT, native_bf16
from hqnn_desktop.core.storage import atomic_write_json


def link_folder(files: LabelledFiles, root: Path) -> Path:
    """A folder of class subfolders holding links to ``files``."""
    for path, target in zip(files.paths, files.targets):
        link = root / files.labels[target] / Path(path).name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(path).resolve())
    return root


def first_per_class(files: LabelledFiles, per_class: int) -> LabelledFiles:
    """The first ``per_class`` images of each class."""
    taken: dict[int, int] = {}
    keep = []
    for i, target in enumerate(files.targets):
        if taken.get(target, 0) < per_class:
            taken[target] = taken.get(target, 0) + 1
            keep.append(i)
    return files.subset(keep)


def compare(pack_dir: Path, data: Path, device: str | None) -> dict:
    """Agreement and macro-F1 of every model in fp32 and bf16 on the same images."""
    runs = {}
    for precision in ("fp32", "bf16"):
        pack = load_pack(pack_dir)
        runs[precision] = evaluate_folder(pack, str(data), MODEL_KINDS, keep_latents=True,
                                          precision=precision, device=device)
    fp, bf = runs["fp32"], runs["bf16"]
    models = {}
    for m in MODEL_KINDS:
        agree = float((fp["latents"]["pred"][m] == bf["latents"]["pred"][m]).mean())
        delta = abs(fp["models"][m]["macro_f1"] - bf["models"][m]["macro_f1"])
        models[m] = {"agreement": agree, "macro_f1_fp32": fp["models"][m]["macro_f1"],
                     "macro_f1_bf16": bf["models"][m]["macro_f1"], "macro_f1_delta": delta}
    agreement = min(v["agreement"] for v in models.values())
    worst = max(v["macro_f1_delta"] for v in models.values())
    return {"agreement": agreement, "max_macro_f1_delta": worst,
            "passed": agreement >= BF16_MIN_AGREEMENT and worst <= BF16_MAX_F1_DELTA,
            "n_images": len(fp["latents"]["paths"]), "models": models}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", required=True)
    parser.add_argument("--data", type=Path, required=True, help="validation folder, one subfolder per class")
    parser.add_argument("--device", help="cpu or cuda (default: cpu)")
    parser.add_argument("--val-fraction", type=float,
                        help="check the validation split of a training folder (as `hqnn-desktop train` splits it)")
    parser.add_argument("--group-pattern", help="regular expression naming the group of a file (split by group)")
    parser.add_argument("--per-class", type=int, help="only this many images per class (a quick look)")
    parser.add_argument("--record", action="store_true", help="write the verdict into the pack's card")
    args = parser.parse_args()
    pack_dir = resolve_pack(args.pack)
    card = read_card(pack_dir)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if args.val_fraction or args.per_class:
            files = scan_class_folders(args.data, card["labels"])
            if args.val_fraction:
                _, files = split_validation(files, args.val_fraction, seed=0, group_pattern=args.group_pattern)
            if args.per_class:
                files = first_per_class(files, args.per_class)
            data = link_folder(files, Path(tmp))
        check = compare(pack_dir, data, args.device)
    device = args.device or "cpu"
    check.update(folder=str(args.data), val_fraction=args.val_fraction, group_pattern=args.group_pattern,
                 device=device, bf16="native" if native_bf16(torch.device(device)) else "emulated",
                 date=time.strftime("%Y-%m-%d"))
    print(json.dumps(check, indent=2))
    if args.record:
        if args.per_class:
            raise SystemExit("A check on a subset is not recorded: run it on the whole validation folder.")
        card.setdefault("precision_check", {})["bf16"] = check
        atomic_write_json(pack_dir / "card.json", card)
        print(f"recorded in {pack_dir / 'card.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
