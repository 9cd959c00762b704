"""Check a pack in bfloat16 against fp32 on labelled validation images, and record the verdict.

The engine uses bf16 autocast only for packs whose card holds a passed check
(same prediction on >= 99.5 % of images for every model, macro-F1 within
0.002; see hqnn_desktop/core/runtime.py). Run it on a machine whose processor or
GPU computes bf16 natively (elsewhere bf16 is emulated and very slow):

    python scripts/check_precision.py --pack pbc8 --data ../shared/data/pbc/val [--device cuda] [--record]

``--per-class N`` checks N images per class only (a quick look, not a verdict to record).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from hqnn_desktop.core.datasets import scan_class_folders
from hqnn_desktop.core.evaluate import evaluate_folder
from hqnn_desktop.core.kinds import MODEL_KINDS
from hqnn_desktop.core.packs import load_pack, read_card, resolve_pack
from hqnn_desktop.core.runtime import BF16_MAX_F1_DELTA, BF16_MIN_AGREEMENT
from hqnn_desktop.core.storage import atomic_write_json


def subset_folder(data: Path, labels: list[str], per_class: int, root: Path) -> Path:
    """A folder of links to the first ``per_class`` images of each class."""
    files = scan_class_folders(data, labels)
    taken: dict[int, int] = {}
    for path, target in zip(files.paths, files.targets):
        if taken.get(target, 0) < per_class:
            taken[target] = taken.get(target, 0) + 1
            link = root / labels[target] / Path(path).name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path(path).resolve())
    return root


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
    parser.add_argument("--per-class", type=int, help="only this many images per class (a quick look)")
    parser.add_argument("--record", action="store_true", help="write the verdict into the pack's card")
    args = parser.parse_args()
    pack_dir = resolve_pack(args.pack)
    card = read_card(pack_dir)
    with tempfile.TemporaryDirectory() as tmp:
        data = subset_folder(args.data, card["labels"], args.per_class, Path(tmp)) if args.per_class else args.data
        check = compare(pack_dir, data, args.device)
    check.update(folder=str(args.data), device=args.device or "cpu", date=time.strftime("%Y-%m-%d"))
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
