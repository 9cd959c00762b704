"""Command line: ``hqnn-desktop [classify|evaluate|train|packs|hardware] ...``; no subcommand opens the window.

Exit codes: 0 when the inputs were processed (unusable images become error
rows), 2 on usage errors (bad options, unknown pack or model), 1 when the work
itself failed (for example a damaged pack), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SUBCOMMANDS = ("classify", "evaluate", "train", "packs", "hardware", "hardware-jobs", "hardware-account")


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


def _parse_models(text: str) -> tuple[str, ...]:
    from .core.heads import MODEL_KINDS

    models = tuple(m.strip().lower() for m in text.split(",") if m.strip())
    bad = [m for m in models if m not in MODEL_KINDS]
    if not models or bad:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(bad) or '(none)'}; choose from {', '.join(MODEL_KINDS)}")
    return models


def build_parser() -> argparse.ArgumentParser:
    from .core.heads import MODEL_KINDS

    parser = argparse.ArgumentParser(
        prog="hqnn-desktop",
        description="Classify blood-cell images with a hybrid quantum-classical network and "
                    "classical twins. Without a subcommand the desktop window opens.")
    sub = parser.add_subparsers(dest="command")

    c = sub.add_parser("classify", help="classify image files and folders into a CSV")
    c.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    c.add_argument("--pack", help="pack name or folder (default: the first bundled pack)")
    c.add_argument("--models", type=_parse_models, default=MODEL_KINDS,
                   help="comma-separated: hqnn,classical,baseline (default: all)")
    c.add_argument("--out", required=True, help="CSV file to write")
    c.add_argument("--batch-size", type=int, default=32)

    e = sub.add_parser("evaluate", help="score a labelled folder (one subfolder per class)")
    e.add_argument("dir")
    e.add_argument("--pack", required=True)
    e.add_argument("--models", type=_parse_models, default=MODEL_KINDS)
    e.add_argument("--out", required=True, help="JSON report to write")
    e.add_argument("--batch-size", type=int, default=32)

    sub.add_parser("packs", help="list installed model packs")

    t = sub.add_parser("train", help="train a pack from a labelled folder")
    t.add_argument("train_dir")
    t.add_argument("--name", required=True, help="name of the new pack")
    t.add_argument("--out", help="pack folder (default: your packs folder/NAME)")
    t.add_argument("--val-dir", help="validation folder with the same class subfolders")
    t.add_argument("--val-fraction", type=float, default=0.15)
    t.add_argument("--group-pattern", help="regular expression whose first group names the source "
                                           "of an image (images of one group stay together)")
    t.add_argument("--backbone", default="efficientnet_lite0",
                   choices=["efficientnet_lite0", "resnet18", "resnet50"])
    t.add_argument("--models", type=_parse_models, default=MODEL_KINDS)
    t.add_argument("--qubits", type=int, default=8)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--fine-tune", action="store_true", help="adapt the backbone end to end first")
    t.add_argument("--epochs", type=int, default=15, help="backbone adaptation epochs (with --fine-tune)")
    t.add_argument("--fine-tune-per-model", action="store_true",
                   help="after training the heads, fine-tune each model end to end with its own copy of the "
                        "backbone (classification then runs one backbone per model: about three to four times slower)")
    t.add_argument("--fine-tune-per-model-epochs", type=int, default=3,
                   help="epochs of that per-model fine-tuning (with --fine-tune-per-model)")
    t.add_argument("--fine-tune-per-model-lr", type=float, default=1e-4,
                   help="learning rate of that per-model fine-tuning")
    t.add_argument("--head-epochs", type=int, default=30)
    t.add_argument("--lr", type=float, default=0.01, help="head learning rate")
    t.add_argument("--batch-size", type=int, default=256, help="head batch size")
    t.add_argument("--contrastive-weight", type=float, default=0.0)
    t.add_argument("--input-size", type=int, default=224)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: a GPU when present)")

    h = sub.add_parser("hardware", help="rerun a pack's quantum layer on IBM hardware, a fake backend or simulator")
    h.add_argument("--pack", required=True)
    h.add_argument("--backend", required=True,
                   help="an IBM device of your account (e.g. ibm_torino; credentials saved in the Hardware "
                        "tab), fake_* (calibrated noise, offline) or aer_simulator (noiseless)")
    h.add_argument("--input", nargs="+", required=True, help="image files or folders")
    h.add_argument("--labels-from-folders", action="store_true",
                   help="each --input is a folder of class subfolders; report accuracy and macro-F1")
    h.add_argument("--shots", type=int, default=4096)
    h.add_argument("--batch-size", type=int, default=64, help="images per Estimator job")
    h.add_argument("--optimization-level", type=int, default=2, choices=[0, 1, 2, 3])
    h.add_argument("--resilience-level", type=int, default=1, choices=[0, 1, 2],
                   help="0 none, 1 readout mitigation (TREX), 2 also zero-noise extrapolation")
    h.add_argument("--dd", action=argparse.BooleanOptionalAction, default=True,
                   help="dynamical decoupling on idle qubits")
    h.add_argument("--dd-sequence", default="XpXm", choices=["XX", "XpXm", "XY4"])
    h.add_argument("--twirl-gates", action=argparse.BooleanOptionalAction, default=None,
                   help="two-qubit gate twirling (default: as the resilience level decides)")
    h.add_argument("--twirl-measure", action=argparse.BooleanOptionalAction, default=None,
                   help="measurement twirling (default: as the resilience level decides)")
    h.add_argument("--yes", action="store_true", help="submit to real hardware without asking")
    h.add_argument("--out", required=True, help="JSON report to write")

    j = sub.add_parser("hardware-jobs", help="list, fetch or cancel earlier hardware runs")
    j.add_argument("action", choices=["list", "fetch", "cancel"])
    j.add_argument("run_id", nargs="?", help="run id (or the id of one of its jobs) for fetch and cancel")
    j.add_argument("--out", help="with fetch: write the report of a finished run to this JSON file")

    a = sub.add_parser("hardware-account", help="save, test or forget your IBM Quantum API key")
    a.add_argument("action", choices=["save", "test", "forget", "where"])
    a.add_argument("--instance", default="", help="with save: the instance CRN (empty: any instance of the key)")
    a.add_argument("--channel", default="ibm_quantum_platform", choices=["ibm_quantum_platform", "ibm_cloud"])
    return parser


def _progress(done: int, total: int, start: float, what: str = "images") -> None:
    rate = done / max(1e-9, time.time() - start)
    eta = (total - done) / rate if rate > 0 else 0
    print(f"\r{done}/{total} {what} ({rate:.1f}/s, ETA {eta:.0f} s)", end="", file=sys.stderr, flush=True)


def _load_pack(name: str | None, models: tuple[str, ...]):
    from .core.packs import PackError, default_pack_name, load_pack, resolve_pack

    name = name or default_pack_name()
    if name is None:
        raise UsageError("No model pack is installed; give one with --pack DIR.")
    try:
        folder = resolve_pack(name)
    except PackError as exc:
        raise UsageError(str(exc)) from exc
    return load_pack(folder, models)


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify into ``<out>.partial`` row by row, then rename it to ``<out>`` once complete.

    So an existing ``--out`` file is never touched by an unfinished run, and a
    ``.partial`` file next to it tells the user the last run did not finish;
    it holds only complete rows, usable as they are.
    """
    from .core.predict import Engine, iter_image_paths

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out must be a file, but {out} is a folder.")
    missing = [p for p in args.paths if not os.path.lexists(p)]
    if missing and len(missing) == len(args.paths):
        raise UsageError(f"Nothing to classify: {', '.join(missing)} not found.")
    pack = _load_pack(args.pack, args.models)
    paths = list(iter_image_paths(args.paths))
    engine = Engine(pack, args.models, batch_size=args.batch_size)
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    tally = _Tally()
    try:
        _classify_into(partial, engine, paths, args.models, pack.labels, tally)
    except KeyboardInterrupt:
        print(f"\nInterrupted after {tally.done} of {len(paths)} images. {out} was not changed; "
              f"the rows finished so far are in {partial}.", file=sys.stderr)
        return 130
    os.replace(partial, out)
    print(f"\n{len(paths)} images, {tally.unusable} not usable -> {out}", file=sys.stderr)
    return 0


@dataclass
class _Tally:
    """Images finished and images not usable, kept up to date so an interruption can report them."""

    done: int = 0
    unusable: int = 0


def _classify_into(partial: Path, engine, paths: list[str], models: tuple[str, ...], labels: list[str],
                   tally: _Tally) -> None:
    """Write the CSV header, then each image's rows with one unbuffered write, then fsync.

    One write per image (not a buffered text file, which flushes at arbitrary
    byte counts) is what keeps every line of a killed run's file a complete row.
    """
    from .core.results import CSV_ENCODING, csv_header, csv_text, result_rows

    start = time.time()
    with open(partial, "wb", buffering=0) as fh:
        _write_all(fh, csv_text([csv_header(labels)]).encode(**CSV_ENCODING))
        for result in engine.classify(paths):
            _write_all(fh, csv_text(result_rows(result, models, labels)).encode(**CSV_ENCODING))
            tally.done += 1
            tally.unusable += result.error is not None
            _progress(tally.done, len(paths), start)
        os.fsync(fh.fileno())


def _write_all(fh, data: bytes) -> None:
    """Write every byte (a raw write may write fewer than asked)."""
    view = memoryview(data)
    while view:
        view = view[fh.write(view):]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .core.datasets import DatasetError
    from .core.evaluate import evaluate_folder
    from .core.storage import atomic_write_json

    pack = _load_pack(args.pack, args.models)
    start = time.time()
    try:
        report = evaluate_folder(pack, args.dir, args.models, args.batch_size,
                                 progress=lambda d, t: _progress(d, t, start))
    except DatasetError as exc:
        raise UsageError(str(exc)) from exc
    atomic_write_json(args.out, report)
    print(file=sys.stderr)
    for m, r in report["models"].items():
        print(f"{m:10s} n={r['n']} accuracy={r['accuracy']:.4f} macro-F1={r['macro_f1']:.4f} "
              f"ECE={r['ece']:.4f}", file=sys.stderr)
    return 0


def cmd_packs(args: argparse.Namespace) -> int:
    from .core.packs import list_packs

    packs = list_packs()
    if not packs:
        print("No model packs installed.")
        return 0
    for info in packs:
        card = info.card
        val = card.get("metrics", {}).get("validation", {}).get("models", {})
        f1 = ", ".join(f"{m} {v['macro_f1']:.4f}" for m, v in val.items() if "macro_f1" in v)
        print(f"{card['name']}  [{info.source}]  {info.path}")
        print(f"  dataset:  {card.get('data', {}).get('name', card.get('data', {}).get('description', '?'))}")
        print(f"  backbone: {card['backbone']} @ {card['input_size']} px, {card['n_qubits']} qubits x "
              f"{card['layers']} layers")
        print(f"  labels:   {', '.join(card['labels'])}")
        print(f"  validation macro-F1: {f1 or 'not recorded'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .core.build import AdaptConfig, HeadConfig, PackRecipe, train_pack
    from .core.datasets import DatasetError
    from .core.packs import user_packs_dir
    from .core.train import Callbacks

    recipe = PackRecipe(
        train_dir=args.train_dir, name=args.name, val_dir=args.val_dir, val_fraction=args.val_fraction,
        group_pattern=args.group_pattern, models=args.models, fine_tune=args.fine_tune,
        fine_tune_per_model=args.fine_tune_per_model, fine_tune_per_model_epochs=args.fine_tune_per_model_epochs,
        fine_tune_per_model_lr=args.fine_tune_per_model_lr,
        adapt=AdaptConfig(backbone=args.backbone, epochs=args.epochs, seed=args.seed,
                          bottleneck=args.qubits, input_size=args.input_size),
        heads=HeadConfig(n_qubits=args.qubits, layers=args.layers, epochs=args.head_epochs, lr=args.lr,
                         batch_size=args.batch_size, contrastive_weight=args.contrastive_weight,
                         seed=args.seed),
        device=args.device)
    start = time.time()

    def progress(stage: str, done: int, total: int, metrics: dict) -> None:
        _progress(done, total, start, what=stage)
        if stage in ("adapt_epoch", "fine_tune_model_epoch") or (stage == "heads" and done % max(1, total // 30) == 0):
            print(f"\n{stage}: {json.dumps(metrics)}", file=sys.stderr)

    out = Path(args.out) if args.out else user_packs_dir() / args.name
    try:
        path = train_pack(recipe, out, Callbacks(progress=progress))
    except DatasetError as exc:
        raise UsageError(str(exc)) from exc
    print(f"\npack written to {path}", file=sys.stderr)
    return 0


def _confirm(prompt: str) -> bool:
    """Ask on the terminal; no answer (end of input) means no."""
    try:
        return input(prompt).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def cmd_hardware(args: argparse.Namespace) -> int:
    from .core.datasets import DatasetError, scan_class_folders
    from .core.predict import iter_image_paths
    from .core.storage import atomic_write_json
    from .hardware.options import RunOptions
    from .hardware.rerun import BackendError, backend_kind, execute, plan_run
    from .hardware.service import ServiceError, connect

    pack = _load_pack(args.pack, ("hqnn",))
    truth = None
    if args.labels_from_folders:
        paths, truth = [], []
        try:
            for folder in args.input:
                files = scan_class_folders(folder, pack.labels)
                paths += [str(p) for p in files.paths]
                truth += list(files.targets)
        except DatasetError as exc:
            raise UsageError(str(exc)) from exc
    else:
        paths = list(iter_image_paths(args.input))
    options = RunOptions(shots=args.shots, batch_size=args.batch_size, optimization_level=args.optimization_level,
                         resilience_level=args.resilience_level, dynamical_decoupling=args.dd,
                         dd_sequence=args.dd_sequence, twirl_gates=args.twirl_gates, twirl_measure=args.twirl_measure)
    real = backend_kind(args.backend) == "real"
    try:
        plan = plan_run(pack, paths, args.backend, truth, options, service=connect() if real else None)
    except (BackendError, ServiceError) as exc:
        raise UsageError(str(exc)) from exc
    if real:
        print(plan.summary(), file=sys.stderr)
        if not args.yes and not _confirm("Submit to IBM Quantum? [y/N] "):
            print("Nothing submitted.", file=sys.stderr)
            return 1
    try:
        report = execute(plan, on_job=lambda job, k, n: print(f"job {k}/{n} {job.job_id()} submitted",
                                                              file=sys.stderr))
    except ServiceError as exc:
        print(f"hqnn-desktop hardware: {exc}", file=sys.stderr)
        return 1
    atomic_write_json(args.out, report)
    print(f"{report['n_images']} images, {report['n_jobs']} jobs, agreement {report['agreement']:.3f}",
          file=sys.stderr)
    if "macro_f1_drop" in report:
        print(f"macro-F1 simulated {report['simulated']['macro_f1']:.4f}, {args.backend} "
              f"{report['hardware']['macro_f1']:.4f}", file=sys.stderr)
    return 0


def cmd_hardware_jobs(args: argparse.Namespace) -> int:
    import datetime

    from .core.storage import atomic_write_json
    from .hardware.jobs import JobStore
    from .hardware.rerun import cancel_run, refresh_run, report_for
    from .hardware.service import ServiceError

    store = JobStore()
    if args.action == "list":
        for r in store.all():
            when = datetime.datetime.fromtimestamp(r.created).strftime("%Y-%m-%d %H:%M")
            print(f"{r.run_id}  {when}  {r.backend:16s} {r.pack:10s} {r.n_images:5d} images  "
                  f"{len(r.jobs)} jobs  {r.status}")
        return 0
    if not args.run_id:
        raise UsageError(f"hardware-jobs {args.action} needs a run id (see hardware-jobs list).")
    try:
        if args.action == "cancel":
            record = cancel_run(store, args.run_id)
            print(f"{record.run_id}: {record.status}", file=sys.stderr)
            return 0
        record = refresh_run(store, args.run_id)
        print(f"{record.run_id}: {record.status}", file=sys.stderr)
        if record.complete and args.out:
            atomic_write_json(args.out, report_for(record))
            print(f"report written to {args.out}", file=sys.stderr)
        return 0
    except KeyError:
        raise UsageError(f"No hardware run {args.run_id} is recorded (see hardware-jobs list).") from None
    except ServiceError as exc:
        print(f"hqnn-desktop hardware-jobs: {exc}", file=sys.stderr)
        return 1


def cmd_hardware_account(args: argparse.Namespace) -> int:
    import getpass

    from .hardware.credentials import Credentials, CredentialsError, CredentialStore
    from .hardware.service import ServiceError, test_connection

    store = CredentialStore()
    try:
        if args.action == "save":
            token = getpass.getpass("IBM Quantum API key (not shown): ").strip()
            store.save(Credentials(token, args.instance, args.channel))
            print(f"Saved in {store.where()}.", file=sys.stderr)
        elif args.action == "forget":
            store.forget()
            print("IBM Quantum credentials removed.", file=sys.stderr)
        elif args.action == "where":
            print(f"{'Saved' if store.load() else 'Nothing saved; a key would be kept'} in {store.where()}.")
        else:
            for b in test_connection():
                print(f"{b.name:16s} {b.num_qubits:4d} qubits  {b.pending_jobs if b.pending_jobs is not None else '?':>6} "
                      f"pending  {'operational' if b.operational else 'not operational'} ({b.status})")
    except (CredentialsError, ServiceError) as exc:
        print(f"hqnn-desktop hardware-account: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-")):
        return _start_gui(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"classify": cmd_classify, "evaluate": cmd_evaluate, "packs": cmd_packs,
                "train": cmd_train, "hardware": cmd_hardware, "hardware-jobs": cmd_hardware_jobs,
                "hardware-account": cmd_hardware_account}
    from .core.imageio import ImageError
    from .core.packs import PackError

    try:
        return handlers[args.command](args)
    except UsageError as exc:
        print(f"hqnn-desktop {args.command}: {exc}", file=sys.stderr)
        return 2
    except (PackError, ImageError, ValueError, OSError) as exc:
        print(f"\nhqnn-desktop {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted; files already written are intact.", file=sys.stderr)
        return 130


def _start_gui(paths: list[str]) -> int:
    from .gui.app import run

    return run(paths)


if __name__ == "__main__":
    sys.exit(main())
