"""Does averaging over turned and mirrored copies of each picture (orientation averaging) help?

A blood cell has no up or down: a microscope picture turned by a quarter turn or mirrored shows the
same cell. Each picture of the validation side of the grouped Blood Cell Images split (bci4) or of
the PBC validation folder (pbc8) goes through the pack's own decode path once, then through the
pack's models in each of the 8 orientations (:mod:`hqnn_desktop.core.orientations`); macro-F1 per
model for 1, 4 and 8 orientations averaged. TEST_SIMPLE (bci4) is reported as a check, never used
to choose. With ``--record`` the choice goes into the pack's card: the count with the best mean
validation macro-F1 over the three models, if it beats a single orientation by at least
``MIN_GAIN`` (each extra orientation costs a backbone pass), else 1. For a pack that cuts a cell
window, ``--windows`` also tries other window sizes at classification time (the same weights) and
records the best one (:func:`choose_window`).

    python training/compare_tta.py --pack bci4 --windows 0.52,0.6,0.65,0.69,0.75 --record \
        > training/results/cell_window_bci4.json
    (refit the temperatures at the chosen window: training/README.md, step 6)
    python training/compare_tta.py --pack bci4 --record > training/results/orientations_bci4.json
    python training/compare_tta.py --pack pbc8 --record > training/results/orientations_pbc8.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from hqnn_desktop.core.cell_crop import CellCrop
from hqnn_desktop.core.datasets import scan_class_folders, split_validation
from hqnn_desktop.core.orientations import CHOICES, MIN_GAIN, RULE, choose, views
from hqnn_desktop.core.packs import CARD, Pack, bundled_packs_dir, load_pack
from hqnn_desktop.core.predict import Engine, _decode
from hqnn_desktop.core.storage import atomic_write_json

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = {"bci4": {"val": lambda labels: split_validation(scan_class_folders(DATA / "bci" / "TRAIN", labels), 0.15, 0,
                                                        r"^g(\d+)_")[1],
                 "test_simple": lambda labels: scan_class_folders(DATA / "bci" / "TEST_SIMPLE", labels)},
        "pbc8": {"val": lambda labels: scan_class_folders(DATA / "pbc" / "val", labels)}}


def probabilities(engine: Engine, paths: list[Path], batch_size: int = 64) -> list[dict[str, np.ndarray]]:
    """Per orientation (as in :func:`views`), per model: the probabilities of every picture."""
    with ThreadPoolExecutor(4) as pool:
        images = np.stack([x for _, x, *_ in pool.map(lambda p: _decode(str(p), engine.pack), paths)])
    out: list[dict[str, list]] = [{m: [] for m in engine.models} for _ in range(max(CHOICES))]
    for start in range(0, len(images), batch_size):
        for j, view in enumerate(views(images[start:start + batch_size], max(CHOICES))):
            for m, p in engine.run_batch(view)[0].items():
                out[j][m].append(p)
    return [{m: np.concatenate(v) for m, v in per.items()} for per in out]


def with_window(pack: Pack, side: float) -> Pack:
    """The pack, cutting a cell window of ``side`` instead of its own (the same weights)."""
    card = copy.deepcopy(pack.card)
    card["preprocessing"]["crop"] = CellCrop(side).to_card()
    return replace(pack, card=card)


def score(pack: Pack, sets: dict) -> dict:
    """Macro-F1 per set, orientation count and model (and the HQNN's per single orientation)."""
    engine = Engine(pack, orientations=1)
    rows = {}
    for name, files in sets.items():
        t0 = time.time()
        probs = probabilities(engine, files.paths)
        y = np.asarray(files.targets)
        rows[name] = {"n": len(y), "seconds": round(time.time() - t0, 1), "macro_f1": {
            str(count): {m: round(float(f1_score(y, np.mean([p[m] for p in probs[:count]], 0).argmax(1),
                                                 average="macro")), 4) for m in engine.models}
            for count in CHOICES},
            "hqnn_macro_f1_per_orientation": [round(float(f1_score(y, p["hqnn"].argmax(1), average="macro")), 4)
                                              for p in probs]}
        print(name, json.dumps(rows[name]), flush=True, file=sys.stderr)
    return rows


def choose_window(by_window: dict[float, dict], trained: float) -> float:
    """The window whose best orientation count gives the best mean validation macro-F1 over the models,
    or, among those within MIN_GAIN of it, the one nearest the window the pack was trained with."""
    value = {}
    for side, rows in by_window.items():
        scores = rows["val"]["macro_f1"]
        value[side] = float(np.mean(list(scores[str(choose(scores))].values())))
    best = max(value.values())
    return min((side for side in value if value[side] >= best - MIN_GAIN), key=lambda side: abs(side - trained))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", default="bci4", choices=sorted(SETS), help="a bundled pack")
    ap.add_argument("--windows", help="cell windows to try (fractions of the shorter side, such as 0.6,0.65), for "
                                      "a pack that cuts one; default: its own")
    ap.add_argument("--record", action="store_true", help="write the choices and their figures into the card")
    args = ap.parse_args()
    folder = bundled_packs_dir() / args.pack
    pack = load_pack(folder)
    # the window the backbone was trained with: the card's own, unless an earlier choice changed it
    trained = pack.card.get("cell_window_choice", {}).get("trained_with") or (pack.crop.side if pack.crop else None)
    sides = [float(v) for v in args.windows.split(",")] if args.windows else [pack.crop.side if pack.crop else None]
    if trained is None and sides != [None]:
        ap.error(f"{args.pack} cuts no cell window")
    sets = {name: files_of(pack.labels) for name, files_of in SETS[args.pack].items()}
    by_window = {}
    for side in sides:
        print(f"cell window {side}", file=sys.stderr)
        by_window[side] = score(with_window(pack, side) if side is not None else pack, sets)
    window = choose_window(by_window, trained) if trained is not None else None
    rows = by_window[window]
    chosen = choose(rows["val"]["macro_f1"])
    command = f"python training/compare_tta.py --pack {args.pack}" + (f" --windows {args.windows}" if args.windows
                                                                       else "") + " --record"
    result = {"what": " ".join(__doc__.split("\n\n")[1].split()), "pack": args.pack, "min_gain": MIN_GAIN,
              "chosen": chosen, "sets": rows}
    if len(by_window) > 1:
        result.update(window=window, trained_window=trained, by_window={str(k): v for k, v in by_window.items()})
    if args.record:
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
        card["orientations"] = {"count": chosen, "validation_macro_f1": rows["val"]["macro_f1"],
                                "rule": RULE, "measured_by": command}
        if len(by_window) > 1:
            card["preprocessing"]["crop"] = CellCrop(window).to_card()
            card["cell_window_choice"] = {
                "trained_with": trained, "chosen": window, "measured_by": command,
                "rule": f"the best mean validation macro-F1 over the models (each window at its best orientation "
                        f"count), or among windows within {MIN_GAIN} of it the nearest the trained one",
                "validation_macro_f1": {str(k): v["val"]["macro_f1"] for k, v in by_window.items()}}
        atomic_write_json(folder / CARD, card)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
