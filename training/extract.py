"""Features of a labelled folder through an adapted backbone, by the app's own decode path.

Optionally re-encodes every original first (``--reencode webp80``, as the shared
PBC training images were made) to measure the encoding shift.

    python training/extract.py --backbone runs/pbc_adapt/backbone.safetensors \
        --dir ../shared/data/pbc/val --out runs/pbc_adapt/val_orig.npz
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from hqnn_desktop.core.backbones import load_state_file
from hqnn_desktop.core.cell_crop import CellCrop
from hqnn_desktop.core.datasets import scan_class_folders, split_validation
from hqnn_desktop.core.imageio import load_rgb, to_model_input
from hqnn_desktop.core.train import FeatureExtractor, extract_features


def reencoded(path: Path, size: int, quality: int, crop: CellCrop | None) -> np.ndarray:
    buf = io.BytesIO()
    load_rgb(path).save(buf, "WEBP", quality=quality)
    buf.seek(0)
    return to_model_input(Image.open(buf).convert("RGB"), size, crop)


def backbone_name_of(weights: Path) -> str:
    """The backbone an adaptation run (gpu_adapt.py) trained, from its record beside the weights."""
    record = weights.parent / "adapt.json"
    if record.is_file():
        return json.loads(record.read_text())["config"]["backbone"]
    return "efficientnet_lite0"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", type=Path, required=True)
    ap.add_argument("--name", help="backbone registry name (default: the one in adapt.json beside "
                                   "--backbone, else efficientnet_lite0)")
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--labels", help="comma-separated class order (default: sorted folder names)")
    ap.add_argument("--group-val", help="take the validation side of a grouped split with this pattern")
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--reencode", type=int, help="WebP quality for a re-encoded copy")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--crop", type=float, help="cut the window on the stained cell first (fraction of "
                                               "the shorter side), as the pack was trained")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    crop = CellCrop(args.crop) if args.crop else None
    files = scan_class_folders(args.dir, args.labels.split(",") if args.labels else None)
    if args.group_val:
        _, files = split_validation(files, args.val_fraction, 0, args.group_val)
    ex = FeatureExtractor(args.name or backbone_name_of(args.backbone), pretrained=False)
    ex.load_state_dict(load_state_file(str(args.backbone)))
    if args.reencode:
        images = np.stack([reencoded(p, args.size, args.reencode, crop) for p in files.paths])
    else:
        images = np.stack([to_model_input(load_rgb(p), args.size, crop) for p in files.paths])
    feats = extract_features(ex, images, batch_size=32, device="cpu")
    np.savez(args.out, features=feats, targets=np.asarray(files.targets),
             paths=np.array([str(p) for p in files.paths]), labels=np.array(files.labels))
    print(args.out, feats.shape)


if __name__ == "__main__":
    main()
