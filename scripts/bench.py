"""``make bench``: the speed and memory figures of README, measured in one run on this machine.

Each measurement runs in its own process so that allocator settings and peak
memory of one do not leak into another:

1. steady-state throughput of the classify engine (three models, past start-up),
2. the floor: the pack's backbone alone on preloaded tensors, same size and settings,
3. their ratio,
4. the same images through a plain PyTorch script (ImageFolder, DataLoader, fp32,
   the three models run separately) and our speed-up over it,
5. peak memory of ``hqnn-desktop classify`` on folders of growing size,
6. start-up of the real app (offscreen): command to window visible, one dropped
   image to prediction shown, and the longest event-loop stall during a batch,
7. the quantum layer's share of the time per batch.

Usage: ``python scripts/bench.py [--data DIR] [--pack NAME] [--n 1000] [--memory 1000,10000]
[--only engine,plain,memory,gui]``.
The data folder must have one subfolder per class (default ../shared/data/pbc/val).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "pbc" / "val"
WARMUP_IMAGES = 64


def spread(paths: list[Path], n: int) -> list[Path]:
    """``n`` paths spread evenly over the sorted list (repeating when there are fewer)."""
    if n <= len(paths):
        step = len(paths) / n
        return [paths[int(i * step)] for i in range(n)]
    return [paths[i % len(paths)] for i in range(n)]


def image_files(data: Path) -> list[Path]:
    from hqnn_desktop.core.imageio import is_image_name

    return sorted(p for p in data.rglob("*") if p.is_file() and is_image_name(p))


def link_folder(files: list[Path], n: int, root: Path) -> Path:
    """A folder of ``n`` distinct files made from ``files`` (cycled), so any size can be measured.

    Hard links where possible, copies otherwise; not symbolic links, which the
    engine rightly classifies once per real file.
    """
    folder = root / f"images_{n}"
    folder.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(spread(files, n)):
        dst = folder / f"{i:06d}{src.suffix}"
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    return folder


# ---------------------------------------------------------------------- child measurements
def measure_engine(args: argparse.Namespace) -> dict:
    """Throughput, floor and quantum share, in one process with the engine's own settings."""
    import numpy as np
    import torch

    from hqnn_desktop.core.packs import load_pack, resolve_pack
    from hqnn_desktop.core.predict import Engine

    # One orientation, like the floor it is compared with (a pack that averages n orientations,
    # such as bci4, classifies n times slower by design: core/orientations.py).
    engine = Engine(load_pack(resolve_pack(args.pack)), batch_size=args.batch_size, orientations=1)
    engine.warm_up()  # as the app does while loading: one-off costs are not steady state
    paths = [str(p) for p in spread(image_files(Path(args.data)), args.n)]
    stamps = []
    for _ in engine.classify(paths):
        stamps.append(time.perf_counter())
    steady = (len(stamps) - WARMUP_IMAGES) / (stamps[-1] - stamps[WARMUP_IMAGES - 1])
    stages = dict(engine.stage_seconds)
    batches = -(-len(paths) // engine.batch_size)

    preload = np.stack([engine.pack.model_input(p) for p in paths[:8 * engine.batch_size]])
    chunks = [preload[i:i + engine.batch_size] for i in range(0, len(preload), engine.batch_size)]
    engine.features(chunks[0])
    repeats = max(1, (args.n - WARMUP_IMAGES) // len(preload))
    start = time.perf_counter()
    for _ in range(repeats):
        for chunk in chunks:
            engine.features(chunk)
    floor = repeats * len(preload) / (time.perf_counter() - start)
    compute = sum(stages.values())
    return {"images": len(paths), "batch_size": engine.batch_size, "precision": engine.precision,
            "threads": torch.get_num_threads(), "throughput": steady, "floor": floor,
            "quantum_share": stages.get("hqnn", 0.0) / compute,
            "quantum_ms_per_batch": 1000 * stages.get("hqnn", 0.0) / batches,
            "stage_seconds": stages}


def measure_plain(args: argparse.Namespace) -> dict:
    """What a user would write: ImageFolder + DataLoader, fp32, each model with its own backbone."""
    import copy

    import torch
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from hqnn_desktop.core.backbones import get_spec
    from hqnn_desktop.core.packs import load_pack, resolve_pack

    pack = load_pack(resolve_pack(args.pack))
    spec = get_spec(pack.card["backbone"])
    size = pack.input_size
    tf = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor(),
                             transforms.Normalize(spec.mean, spec.std)])
    dataset = datasets.ImageFolder(args.data, tf)
    wanted = {str(p) for p in spread(image_files(Path(args.data)), args.n)}
    index = [i for i, (p, _) in enumerate(dataset.samples) if p in wanted]
    loader = DataLoader(Subset(dataset, index), batch_size=args.batch_size, num_workers=2)
    models = {kind: torch.nn.Sequential(copy.deepcopy(pack.extractor.backbone), head).eval()
              for kind, head in pack.heads.items()}
    done, start = 0, None
    with torch.no_grad():
        for x, _ in loader:
            for model in models.values():
                torch.softmax(model(x), dim=1)
            done += len(x)
            if start is None and done >= WARMUP_IMAGES:
                start, counted = time.perf_counter(), done
    return {"images": len(index), "throughput": (done - counted) / (time.perf_counter() - start)}


def measure_gui(args: argparse.Namespace) -> dict:
    """Start the real app; time window visible, one dropped image, and stalls during a batch."""
    from PySide6.QtCore import QEvent, QMimeData, QObject, QPointF, Qt, QTimer, QUrl
    from PySide6.QtGui import QDropEvent, QWindow
    from PySide6.QtWidgets import QApplication

    from hqnn_desktop.gui import app as app_module

    t0 = float(os.environ["HQNN_BENCH_T0"])
    out: dict = {}
    qapp = QApplication(sys.argv[:1])

    class Exposed(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Expose and isinstance(obj, QWindow) and obj.isExposed():
                out.setdefault("window_visible_s", time.time() - t0)
            return False

    exposed = Exposed()
    qapp.installEventFilter(exposed)
    batch_folder = args.gui_folder
    state = {"phase": "loading", "last_tick": None, "gaps": []}

    def window():
        from hqnn_desktop.gui.main_window import MainWindow

        return next(w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow))

    def tick() -> None:
        now = time.perf_counter()
        w = window()
        if state["phase"] == "loading" and w.classify.engine is not None:
            out["models_loaded_s"] = time.time() - t0
            mime = QMimeData()
            mime.setUrls([QUrl.fromLocalFile(args.drop)])
            state.update(phase="drop", dropped=now)
            w.dropEvent(QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))
        elif state["phase"] == "drop" and w.classify.model.results and w.classify.model.results[0].proba \
                and not w.classify.busy():
            out["drop_to_prediction_s"] = now - state["dropped"]
            w.classify.model.reset(w.classify.model.labels, w.classify.model.models)
            state.update(phase="batch", started=now)
            w.classify.add_paths([batch_folder])
        elif state["phase"] == "batch":
            if state["last_tick"] is not None:
                state["gaps"].append(now - state["last_tick"])
            if not w.classify.busy() and w.classify.model.results:
                gaps = sorted(state["gaps"])
                out.update(batch_images=len(w.classify.model.results), batch_s=now - state["started"],
                           max_stall_ms=1000 * gaps[-1], p99_stall_ms=1000 * gaps[int(0.99 * (len(gaps) - 1))])
                state["phase"] = "done"
                w.close()
        state["last_tick"] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    QTimer.singleShot(0, timer.start)
    app_module.run([])
    return out


# ---------------------------------------------------------------------- the parent
def child(mode: str, args: argparse.Namespace, extra_env: dict | None = None) -> dict:
    """Run one measurement in a fresh interpreter; returns its JSON result."""
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        cmd = [sys.executable, __file__, "--child", mode, "--result", result.name, "--data", str(args.data),
               "--pack", args.pack, "--n", str(args.n), "--batch-size", str(args.batch_size)]
        if args.gui_folder:
            cmd += ["--gui-folder", args.gui_folder, "--drop", args.drop]
        env = {**os.environ, **(extra_env or {})}
        subprocess.run(cmd, check=True, env=env)
        return json.loads(Path(result.name).read_text())


def peak_memory(folder: Path, args: argparse.Namespace, scratch: Path) -> dict:
    """Peak resident memory (MB) of ``hqnn-desktop classify`` on ``folder``, from the kernel's rusage."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hqnn_desktop", "classify", str(folder), "--pack", args.pack,
                             "--out", str(scratch / f"{folder.name}.csv")], stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"classify failed on {folder} (exit {proc.returncode})")
    return {"images": len(list(folder.iterdir())), "peak_rss_mb": usage.ru_maxrss / 1024,
            "seconds": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BENCH_DATA", DEFAULT_DATA)))
    parser.add_argument("--pack", default="pbc8")
    parser.add_argument("--n", type=int, default=1000, help="images for the throughput figures")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--memory", default="1000,10000", help="folder sizes for the peak-memory figure")
    parser.add_argument("--only", default="engine,plain,memory,gui",
                        help="comma-separated parts to run (a partial run prints its JSON only)")
    parser.add_argument("--out", type=Path, default=REPO / "training" / "results" / "bench.json")
    parser.add_argument("--child", choices=["engine", "plain", "gui"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--gui-folder", help=argparse.SUPPRESS)
    parser.add_argument("--drop", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure = {"engine": measure_engine, "plain": measure_plain, "gui": measure_gui}[args.child]
        Path(args.result).write_text(json.dumps(measure(args)))
        return 0
    if not args.data.is_dir():
        raise SystemExit(f"No image folder at {args.data}: pass --data DIR (one subfolder per class) "
                         "or set BENCH_DATA.")
    files = image_files(args.data)
    report = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "python": platform.python_version()},
              "data": str(args.data), "pack": args.pack, "date": time.strftime("%Y-%m-%d %H:%M")}
    parts = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="hqnn-bench-") as tmp:
        scratch = Path(tmp)
        if "engine" in parts:
            print(f"[1-3, 7] engine throughput and floor on {args.n} images…", flush=True)
            report["engine"] = child("engine", args)
        if "plain" in parts:
            print("[4] plain PyTorch script…", flush=True)
            report["plain_pytorch"] = child("plain", args)
        if "memory" in parts:
            report["memory"] = []
            for n in (int(v) for v in args.memory.split(",")):
                print(f"[5] peak memory, {n} images…", flush=True)
                report["memory"].append(peak_memory(link_folder(files, n, scratch), args, scratch))
        if "gui" in parts:
            print("[6] app start-up, dropped image, event-loop stalls during a batch…", flush=True)
            args.gui_folder, args.drop = str(link_folder(files, args.n, scratch / "gui")), str(files[0])
            dirs = {f"HQNN_{k}_DIR": str(scratch / k.lower()) for k in ("CONFIG", "DATA", "LOG")}
            _choose_pack(args.pack, dirs)
            report["gui"] = child("gui", args, {**dirs, "HQNN_BENCH_T0": str(time.time()),
                                                "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")})
    if len(parts) < 4:
        print(json.dumps(report, indent=2))
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_summary(report)
    print(f"\nwritten to {args.out}")
    return 0


def _choose_pack(pack: str, dirs: dict) -> None:
    """Make the benchmark's throw-away settings select ``pack`` (so the app loads it at start)."""
    from hqnn_desktop.core.packs import resolve_pack
    from hqnn_desktop.core.settings import Settings

    Path(dirs["HQNN_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
    settings = Settings(Path(dirs["HQNN_CONFIG_DIR"]) / "settings.json")
    settings.set("pack", str(resolve_pack(pack)))
    settings.save()


def print_summary(r: dict) -> None:
    e, p, g = r["engine"], r["plain_pytorch"], r["gui"]
    mem = ", ".join(f"{m['images']} images {m['peak_rss_mb']:.0f} MB" for m in r["memory"])
    rows = [
        ("1. classify throughput (3 models, steady state)", f"{e['throughput']:.1f} images/s"),
        ("2. floor: backbone alone on preloaded tensors", f"{e['floor']:.1f} images/s"),
        ("3. ratio (target >= 0.8)", f"{e['throughput'] / e['floor']:.2f}"),
        ("4. plain PyTorch script (3 models separately)",
         f"{p['throughput']:.1f} images/s -> ours {e['throughput'] / p['throughput']:.1f}x"),
        ("5. peak memory of classify (target < 2 GB, flat)", mem),
        ("6. command to window visible (target < 2 s)", f"{g['window_visible_s']:.2f} s"),
        ("   dropped image to prediction (target < 1 s)", f"{g['drop_to_prediction_s']:.3f} s"),
        ("   longest UI stall in a batch (target < 100 ms)",
         f"{g['max_stall_ms']:.0f} ms (p99 {g['p99_stall_ms']:.0f} ms, {g['batch_images']} images)"),
        ("7. quantum layer share of time per batch",
         f"{100 * e['quantum_share']:.1f} % ({e['quantum_ms_per_batch']:.1f} ms per batch of {e['batch_size']})"),
    ]
    print(f"\nMeasured {r['date']} on {r['machine']['cpus']} CPUs, pack {r['pack']}, precision "
          f"{e['precision']}, {e['threads']} torch threads")
    for name, value in rows:
        print(f"{name:52s} {value}")


if __name__ == "__main__":
    sys.exit(main())
