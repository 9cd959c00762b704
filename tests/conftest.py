"""Shared fixtures: an isolated user folder per test and small generated image datasets."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "resources" / "samples"
BUNDLED = REPO / "resources" / "packs"


@pytest.fixture(autouse=True)
def garbage_collected_in_the_main_thread():
    """As in the app (gui/app.py), Python's automatic garbage collection is off and garbage is
    collected in the main thread, here after each test. Left on, a collection can start in a worker
    thread (one loading a pack, say) and destroy there a Qt window left over from earlier, which
    deadlocks against the main thread: seen once in CI, a test waiting for ever. What survives is
    frozen, so that each collection looks only at the objects of one test (0.16 s a test otherwise)."""
    gc.disable()
    yield
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Settings, user packs and logs of each test live in a fresh temporary folder."""
    base = tmp_path_factory.mktemp("user")
    for var, sub in (("HQNN_CONFIG_DIR", "config"), ("HQNN_DATA_DIR", "data"), ("HQNN_LOG_DIR", "log")):
        monkeypatch.setenv(var, str(base / sub))
    return base


def draw_cell(kind: int, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """A synthetic 'cell': class 0 a round purple blob, 1 a red ring, 2 a blue bar."""
    bg = tuple(int(v) for v in rng.integers(200, 240, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    cx, cy = (int(v) for v in rng.integers(size // 3, 2 * size // 3, 2))
    r = int(rng.integers(size // 6, size // 4))
    if kind == 0:
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(120, 40, 150))
    elif kind == 1:
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(200, 30, 30), width=max(2, r // 3))
    else:
        d.rectangle([cx - r, cy - r // 3, cx + r, cy + r // 3], fill=(30, 60, 200))
    return im


def make_dataset(root: Path, per_class: int, seed: int, names=("alpha", "beta", "gamma")) -> Path:
    rng = np.random.default_rng(seed)
    for k, name in enumerate(names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw_cell(k, rng).save(root / name / f"s{i // 4:02d}_{name}_{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> tuple[Path, Path]:
    """(train, val) folders of synthetic cells, three classes."""
    base = tmp_path_factory.mktemp("tiny")
    return make_dataset(base / "train", 24, 0), make_dataset(base / "val", 8, 1)


def open_main_window(qtbot):
    """The main window on the bundled pbc8 pack, shown, with its models loaded."""
    from hqnn_desktop.core.settings import Settings
    from hqnn_desktop.gui.main_window import MainWindow

    settings = Settings()
    settings.set("pack", str(BUNDLED / "pbc8"))
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.start_loading()
    qtbot.waitUntil(lambda: w.classify.engine is not None, timeout=60_000)
    assert w.classify.engine.pack.name == "pbc8"
    return w


@pytest.fixture
def window(qtbot):
    """The main window on the bundled pbc8 pack, models loaded; background work stopped afterwards."""
    w = open_main_window(qtbot)
    yield w
    w.classify.cancel()
    w.training.cancel()
    w.classify.wait(10)
    qtbot.waitUntil(lambda: not w.training.busy(), timeout=60_000)
