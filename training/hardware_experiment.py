"""The paper's hardware experiment, offline: the bundled packs' HQNN circuits on calibrated fake backends.

For each pack (pbc8, bci4) a stratified subset of its validation images goes
through the local backbone once (codes and noiseless <Z> cached in the results
file); then the same codes run on every fake backend through the app's own
hardware path (best-chain transpilation, one Estimator job per batch, local
testing mode on the density-matrix emulator) and the classifier finishes
locally. Each (pack, backend) result is written as soon as it is done, so a
rerun resumes where it stopped.

    .venv/bin/python training/hardware_experiment.py            # default: 200 images per pack
    .venv/bin/python training/hardware_experiment.py --per-pack 100 --resilience-level 1 \
        --out training/results/hardware_fake_backends_trex.json

Validation sets: pbc/val (original JPEGs); for bci4, 15 % of bci/TRAIN split by
overlap group (``^g(\\d+)_``, seed 0), as recorded in the pack's card.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hqnn_desktop.core.datasets import scan_class_folders, split_validation
from hqnn_desktop.core.packs import load_pack
from hqnn_desktop.core.storage import atomic_write_json
from hqnn_desktop.hardware.options import RunOptions
from hqnn_desktop.hardware.rerun import LocalPass, build_report, local_pass, resolve_backend
from hqnn_desktop.hardware.runner import run_quantum_layer, transpile_layer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BCI_GROUP = r"^g(\d+)_"
BACKENDS = ("fake_guadalupe", "fake_brisbane", "fake_torino", "fake_fez")


def validation_files(pack_name: str, labels: list[str]):
    """The pack's validation images, as its card describes them."""
    if pack_name == "pbc8":
        return scan_class_folders(DATA / "pbc" / "val", labels)
    _, val = split_validation(scan_class_folders(DATA / "bci" / "TRAIN", labels), 0.15, seed=0,
                              group_pattern=BCI_GROUP)
    return val


def stratified(targets: np.ndarray, total: int, seed: int = 0) -> list[int]:
    """About ``total`` indices with the class proportions of ``targets`` (at least 2 per class)."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        k = min(len(idx), max(2, round(total * len(idx) / len(targets))))
        picked += sorted(rng.permutation(idx)[:k].tolist())
    return sorted(picked)


def generation(backend) -> str:
    """Processor family and revision as the device configuration records it (e.g. 'Eagle r3')."""
    proc = backend.configuration().processor_type or {}
    return f"{proc.get('family', '?')} r{proc.get('revision', '?')}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packs", nargs="+", default=["pbc8", "bci4"])
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS))
    ap.add_argument("--per-pack", type=int, default=200, help="validation images per pack (stratified)")
    ap.add_argument("--shots", type=int, default=4096)
    ap.add_argument("--resilience-level", type=int, default=0)
    ap.add_argument("--no-dd", action="store_true", help="no dynamical decoupling")
    ap.add_argument("--out", type=Path, default=ROOT / "training" / "results" / "hardware_fake_backends.json")
    args = ap.parse_args()

    options = RunOptions(shots=args.shots, resilience_level=args.resilience_level,
                         dynamical_decoupling=not args.no_dd, seed=0)
    state = json.loads(args.out.read_text()) if args.out.exists() else {}
    if state.get("options") not in (None, options.to_dict()) or state.get("per_pack") not in (None, args.per_pack):
        raise SystemExit(f"{args.out} was made with other options; choose another --out.")
    state.update(options=options.to_dict(), per_pack=args.per_pack, inputs=state.get("inputs", {}),
                 runs=state.get("runs", {}))
    for pack_name in args.packs:
        pack = load_pack(ROOT / "resources" / "packs" / pack_name, ("hqnn",))
        if pack_name not in state["inputs"]:
            files = validation_files(pack_name, pack.labels)
            pick = stratified(np.asarray(files.targets), args.per_pack)
            t0 = time.time()
            local = local_pass(pack, [str(files.paths[i]) for i in pick], [int(files.targets[i]) for i in pick])
            state["inputs"][pack_name] = {**local.to_dict(), "seconds": round(time.time() - t0, 1)}
            atomic_write_json(args.out, state)
            print(f"{pack_name}: {len(local.paths)} images through the backbone in {time.time() - t0:.0f} s",
                  flush=True)
        local = LocalPass.from_dict(state["inputs"][pack_name])
        weights = pack.heads["hqnn"].transform.weights.detach().numpy()
        for name in args.backends:
            key = f"{pack_name}/{name}"
            if key in state["runs"]:
                continue
            backend = resolve_backend(name, pack.card["n_qubits"])
            layer = transpile_layer(backend, pack.card["n_qubits"], pack.card["layers"], options.optimization_level)
            t0 = time.time()
            hw_z, jobs = run_quantum_layer(local.codes, weights, backend, options)
            wall = time.time() - t0
            report = build_report(pack, name, options, local, hw_z, jobs)
            state["runs"][key] = {
                "pack": pack_name, "backend": name, "generation": generation(backend),
                "device_qubits": backend.num_qubits, "physical_qubits": layer.physical_qubits,
                "two_qubit_gates": sum(1 for ins in layer.circuit.data if ins.operation.num_qubits == 2),
                "n_images": report["n_images"], "n_jobs": report["n_jobs"],
                "simulated_macro_f1": report["simulated"]["macro_f1"],
                "hardware_macro_f1": report["hardware"]["macro_f1"],
                "macro_f1_drop": report["macro_f1_drop"],
                "simulated_accuracy": report["simulated"]["accuracy"],
                "hardware_accuracy": report["hardware"]["accuracy"],
                "agreement": report["agreement"],
                "mean_abs_z_error": float(np.abs(hw_z - local.sim_z).mean()),
                "wall_seconds": round(wall, 1)}
            atomic_write_json(args.out, state)
            r = state["runs"][key]
            print(f"{key}: {r['generation']}, F1 {r['simulated_macro_f1']:.4f} -> {r['hardware_macro_f1']:.4f}, "
                  f"agreement {r['agreement']:.3f}, {wall:.0f} s", flush=True)


if __name__ == "__main__":
    main()
