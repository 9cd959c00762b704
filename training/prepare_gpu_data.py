"""Pack a dataset split into one compact file set that travels to a lent GPU machine.

The GPU machine sees only the checkout (64 MiB at most), not ../shared, so the
images are decoded and resized here exactly as the app does
(``core.imageio.load_model_input``), re-encoded as WebP and concatenated into
``images.bin`` with an ``index.json`` of offsets, labels and splits. The
ImageNet Lite0 weights travel beside them as fp16 safetensors.

    python training/prepare_gpu_data.py pbc --out .gpudata/pbc
    python training/prepare_gpu_data.py bci --out .gpudata/bci
"""

from __future__ import annotations

import argparse
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file

from hqnn_desktop.core.backbones import _lite_weights
from hqnn_desktop.core.cell_crop import CellCrop
from hqnn_desktop.core.datasets import scan_class_folders, split_validation
from hqnn_desktop.core.imageio import load_model_input

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BCI_GROUP = r"^g(\d+)_"


def encode(path: Path, size: int, quality: int, crop: CellCrop | None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(load_model_input(path, size, crop)).save(buf, "WEBP", quality=quality, method=4)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", choices=["pbc", "bci"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--backbone", default="efficientnet_lite0", choices=["efficientnet_lite0", "efficientnet_lite2"],
                    help="whose ImageNet weights to copy beside the data (fp16)")
    ap.add_argument("--val-subset", type=int, default=400, help="validation images carried for monitoring (0: all)")
    ap.add_argument("--crop", type=float, help="cut a window on the stained cell first, this fraction "
                                               "of the shorter side (the pack's preprocessing.crop)")
    args = ap.parse_args()
    crop = CellCrop(args.crop) if args.crop else None
    if args.dataset == "pbc":
        train = scan_class_folders(DATA / "pbc" / "train")
        val = scan_class_folders(DATA / "pbc" / "val", train.labels)
    else:
        full = scan_class_folders(DATA / "bci" / "TRAIN")
        train, val = split_validation(full, 0.15, seed=0, group_pattern=BCI_GROUP)
    if args.val_subset:
        val = val.subset(range(0, len(val), max(1, len(val) // args.val_subset)))
    items = [(p, t, "train") for p, t in zip(train.paths, train.targets)]
    items += [(p, t, "val") for p, t in zip(val.paths, val.targets)]
    if args.dataset == "bci":
        check = scan_class_folders(DATA / "bci" / "TEST_SIMPLE", train.labels)
        items += [(p, t, "check") for p, t in zip(check.paths, check.targets)]
    with ThreadPoolExecutor(4) as pool:
        blobs = list(pool.map(lambda it: encode(it[0], args.size, args.quality, crop), items))
    args.out.mkdir(parents=True, exist_ok=True)
    offsets, pos = [], 0
    with open(args.out / "images.bin", "wb") as fh:
        for b in blobs:
            fh.write(b)
            offsets.append([pos, len(b)])
            pos += len(b)
    index = {"labels": train.labels, "size": args.size, "offsets": offsets,
             "crop": crop.to_card() if crop else None,
             "targets": [t for _, t, _ in items], "split": [s for _, _, s in items],
             "names": [p.name for p, _, _ in items]}
    (args.out / "index.json").write_text(json.dumps(index))
    variant = args.backbone.removeprefix("efficientnet_")
    state = torch.load(_lite_weights(variant), map_location="cpu", weights_only=True)
    save_file({k: v.half().contiguous() for k, v in state.items() if not k.startswith("_fc.")},
              str(args.out.parent / f"{variant}_imagenet_fp16.safetensors"))
    print(f"{len(items)} images, {pos / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
