"""Killing or interrupting work never corrupts what is already on disk.

The CLI is run as a real process and killed mid-run (SIGKILL, SIGINT); settings
are killed during repeated saves; packs get a failure injected at each step of
a save; the window is closed mid-batch. Afterwards the previous files must be
intact and readable.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hqnn_desktop.core.results import csv_header

from .conftest import BUNDLED, REPO, draw_cell

needs_pbc8 = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")

MODELS = ("hqnn", "classical", "baseline")
PREVIOUS_CSV = b"path,model,label\r\nfrom yesterday.png,hqnn,neutrophil\r\n"

#: The real CLI, with each batch slowed down a little so that a kill always lands mid-run
#: however fast the machine is (the rows, files and renames are the CLI's own).
#: Ctrl+C is re-enabled first: a test run started in the background inherits an ignored SIGINT.
SLOW_CLI = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from hqnn_desktop.core import predict
real = predict.Engine.run_batch
def slow(self, *args, **kwargs):
    time.sleep(0.4)
    return real(self, *args, **kwargs)
predict.Engine.run_batch = slow
from hqnn_desktop.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("interrupt") / "slides"
    root.mkdir()
    rng = np.random.default_rng(5)
    for i in range(60):
        draw_cell(i % 3, rng, size=48).save(root / f"cell {i:02d}.png")
    (root / "zz empty.jpg").write_bytes(b"")
    return root


def _start_cli(folder: Path, out: Path) -> subprocess.Popen:
    args = ["classify", str(folder), "--pack", str(BUNDLED / "pbc8"), "--out", str(out), "--batch-size", "4"]
    return subprocess.Popen([sys.executable, "-c", SLOW_CLI, *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def _wait_for_rows(proc: subprocess.Popen, partial: Path, n_rows: int, timeout: float = 120) -> None:
    """Poll until the partial file holds ``n_rows`` lines after the header, failing if the run ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        if partial.exists() and partial.read_bytes().count(b"\n") > n_rows:
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no rows were written in time")


def _check_partial(partial: Path, folder: Path) -> int:
    """Every line of the partial CSV is a complete row and every image has all its rows; returns images."""
    data = partial.read_bytes()
    assert data.endswith(b"\n"), "the last line is cut"
    with open(partial, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header == csv_header(json.loads((BUNDLED / "pbc8" / "card.json").read_text())["labels"])
    assert body and all(len(r) == len(header) for r in body)
    assert len(body) % len(MODELS) == 0, "an image is missing some of its rows"
    for row in body:
        assert Path(row[0]).parent == folder
        assert row[1] in MODELS
        assert row[4] or abs(sum(float(v) for v in row[5:]) - 1) < 1e-3
    return len(body) // len(MODELS)


@needs_pbc8
def test_killed_classify_leaves_previous_csv_and_complete_rows(folder, tmp_path):
    """SIGKILL (no chance to clean up) and SIGINT (Ctrl+C), each mid-run; both runs start together to
    share their start-up time."""
    runs = {}
    for sig in (signal.SIGKILL, signal.SIGINT):
        out = tmp_path / sig.name / "results.csv"
        out.parent.mkdir()
        out.write_bytes(PREVIOUS_CSV)
        runs[sig] = (out, _start_cli(folder, out))
    for sig, (out, proc) in runs.items():
        _wait_for_rows(proc, out.with_name("results.csv.partial"), 2 * len(MODELS))
        proc.send_signal(sig)
    for sig, (out, proc) in runs.items():
        _, err = proc.communicate(timeout=60)
        partial = out.with_name("results.csv.partial")
        assert out.read_bytes() == PREVIOUS_CSV, f"{sig.name}: the previous results were changed"
        assert 2 <= _check_partial(partial, folder) < 61
        if sig == signal.SIGINT:
            assert proc.returncode == 130
            assert f"{out} was not changed" in err.decode() and str(partial) in err.decode()
        else:
            assert proc.returncode == -signal.SIGKILL


SAVE_LOOP = """
import sys
import threading
from pathlib import Path
from hqnn_desktop.core.settings import Settings
settings = Settings(Path(sys.argv[1]))
print("ready", flush=True)
i = 0
while True:
    settings.set("counter", i)
    settings.set("recent_folders", [f"/data/slides/patient {k}" for k in range(i % 200)])
    settings.save()
    i += 1
"""


def test_settings_survive_kill_during_saves(tmp_path):
    from hqnn_desktop.core.settings import Settings

    path = tmp_path / "settings.json"
    first = Settings(path)
    first.set("pack", "pbc8")
    first.save()
    rng = np.random.default_rng(0)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(path)], cwd=REPO, stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(float(rng.uniform(0.05, 0.3)))
        proc.kill()
        proc.wait(timeout=30)
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["pack"] == "pbc8" and isinstance(data.get("counter", 0), int)
        assert Settings(path).get("pack") == "pbc8"
        assert not path.with_suffix(".damaged.json").exists()


def _failing_replace(real, target: Path):
    """An os.replace that fails when something is about to be renamed onto ``target``."""
    def replace(src, dst, *args, **kwargs):
        if Path(dst) == target:
            raise OSError(28, "No space left on device")
        return real(src, dst, *args, **kwargs)
    return replace


def test_settings_failure_at_rename_keeps_old_file(tmp_path, monkeypatch):
    from hqnn_desktop.core.settings import Settings

    path = tmp_path / "settings.json"
    settings = Settings(path)
    settings.set("pack", "pbc8")
    settings.save()
    before = path.read_bytes()
    settings.set("pack", "bci4")
    monkeypatch.setattr(os, "replace", _failing_replace(os.replace, path))
    with pytest.raises(OSError):
        settings.save()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"], "a temporary file was left behind"


@pytest.fixture(scope="module")
def pbc8():
    from hqnn_desktop.core.packs import load_pack

    return load_pack(BUNDLED / "pbc8")


def _save_user_pack(pack) -> Path:
    from hqnn_desktop.core.packs import save_pack, user_packs_dir

    card = {**pack.card, "name": "mine"}
    return save_pack(user_packs_dir() / "mine", card, pack.extractor, pack.heads)


def _assert_pack_usable(folder: Path) -> None:
    from hqnn_desktop.core.packs import list_packs, load_pack

    assert load_pack(folder).name == "mine"
    assert [p.path for p in list_packs() if p.source == "user"] == [folder]


@needs_pbc8
def test_pack_failure_while_writing_keeps_old_pack(pbc8, monkeypatch):
    from hqnn_desktop.core import packs

    folder = _save_user_pack(pbc8)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(packs, "atomic_write_json", disk_full)
    with pytest.raises(packs.PackError, match=r"No space left on device\); any pack saved there before is unchanged"):
        _save_user_pack(pbc8)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["mine"], "a temporary folder was left behind"
    _assert_pack_usable(folder)


@needs_pbc8
def test_pack_failure_at_swap_keeps_old_pack(pbc8, monkeypatch):
    from hqnn_desktop.core.packs import PackError

    folder = _save_user_pack(pbc8)
    with monkeypatch.context() as patch, pytest.raises(PackError):  # (undo() would drop the isolated dirs)
        patch.setattr(os, "replace", _failing_replace(os.replace, folder))
        _save_user_pack(pbc8)
    _assert_pack_usable(folder)


@needs_pbc8
def test_pack_killed_between_renames_is_restored(pbc8):
    # a kill after the old pack was moved aside and before the new one moved in
    folder = _save_user_pack(pbc8)
    os.replace(folder, folder.with_name(f".{folder.name}.old"))
    _assert_pack_usable(folder)


@needs_pbc8
def test_replacing_a_read_only_pack_leaves_no_old_copy(pbc8):
    folder = _save_user_pack(pbc8)
    for f in folder.iterdir():
        f.chmod(0o444)
    folder.chmod(0o555)  # the user protected the pack (root ignores this: the check bites only as a user)
    _save_user_pack(pbc8)
    assert sorted(p.name for p in folder.parent.iterdir()) == ["mine"], "the old copy was left behind"
    _assert_pack_usable(folder)


@needs_pbc8
def test_closing_window_mid_batch_keeps_settings(pbc8, qtbot, tmp_path):
    """The window given the already-loaded pack (instead of loading its own) to keep the test short."""
    from PySide6.QtCore import QThreadPool

    from hqnn_desktop.core.predict import Engine
    from hqnn_desktop.core.settings import Settings
    from hqnn_desktop.gui.main_window import MainWindow

    rng = np.random.default_rng(9)
    for i in range(40):
        draw_cell(i % 3, rng, size=32).save(tmp_path / f"c{i:03d}.png")
    settings = Settings()
    settings.set("pack", "pbc8")
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.show()
    engine = Engine(pbc8, batch_size=8, decode_workers=2)
    real = engine.run_batch

    def slow(*args, **kwargs):
        time.sleep(0.3)  # so that the window is always closed while the batch is running
        return real(*args, **kwargs)

    engine.run_batch = slow
    window.classify.set_engine(engine)
    window.classify.add_paths([str(tmp_path)])
    qtbot.waitUntil(lambda: len(window.classify.model.results) > 0, timeout=60_000)
    assert window.classify.busy()
    window.close()
    assert not window.classify.busy()
    assert 0 < len(window.classify.model.results) < 40, "closing did not stop the batch"
    saved = json.loads(settings.path.read_text(encoding="utf-8"))
    assert saved["pack"] == "pbc8" and "window_geometry" in saved
    qtbot.waitUntil(lambda: not [t for t in threading.enumerate() if t.name.startswith(("feeder", "decode"))],
                    timeout=10_000)
    QThreadPool.globalInstance().waitForDone(60_000)  # other tabs' start-up workers, before the window goes
