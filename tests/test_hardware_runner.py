"""The quantum layer on a real qiskit fake backend (local testing mode, calibrated noise)."""

import math

import numpy as np
import torch
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from hqnn_desktop.core.circuits import QuantumLayer
from hqnn_desktop.hardware.options import RunOptions
from hqnn_desktop.hardware.runner import run_quantum_layer


def test_fake_backend_agrees_with_simulation_in_batched_jobs():
    rng = np.random.default_rng(0)
    layer = QuantumLayer(3, 1)
    with torch.no_grad():
        layer.weights.copy_(torch.tensor(rng.uniform(-1, 1, (1, 3, 3))))
    codes = rng.uniform(-0.9, 0.9, (6, 3))
    simulated = layer(torch.tensor(codes)).detach().numpy()
    seen = []
    measured, jobs = run_quantum_layer(codes, layer.weights.detach().numpy(), FakeManilaV2(),
                                       RunOptions(shots=4000, batch_size=4, seed=1),
                                       on_job=lambda job, k, n: seen.append((k, n)))
    assert measured.shape == (6, 3)
    assert len(jobs) == math.ceil(6 / 4) == len(seen) and seen[-1] == (2, 2)
    assert np.abs(measured - simulated).mean() < 0.1  # shot noise + the device's calibrated noise
    assert np.corrcoef(measured.ravel(), simulated.ravel())[0, 1] > 0.9


def test_hardware_command_on_a_fake_backend(tiny_dataset, tmp_path, capsys, monkeypatch):
    import json

    from hqnn_desktop.cli import main

    train, val = tiny_dataset
    pack = tmp_path / "pack"
    assert main(["train", str(train), "--val-dir", str(val), "--name", "hw", "--out", str(pack), "--qubits", "3",
                 "--layers", "1", "--head-epochs", "3", "--input-size", "64", "--models", "hqnn"]) == 0
    out = tmp_path / "hw.json"
    assert main(["hardware", "--pack", str(pack), "--backend", "fake_manila", "--input", str(val),
                 "--labels-from-folders", "--shots", "2000", "--batch-size", "10", "--resilience-level", "0",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert f"hardware run {report['run_id']} recorded" in capsys.readouterr().err  # said before the wait
    assert report["n_images"] == 24 and report["n_jobs"] == len(report["jobs"]) == 3
    assert report["agreement"] >= 0.8
    for key in ("simulated", "hardware"):
        assert 0 <= report[key]["macro_f1"] <= 1 and "accuracy" in report[key]
    row = report["images"][0]
    assert len(row["z_simulated"]) == len(row["z_hardware"]) == 3 and row["truth"] in ("alpha", "beta", "gamma")
    again = tmp_path / "again.json"  # the run was recorded; its report is rebuilt from the record
    assert main(["hardware-jobs", "fetch", report["run_id"][:6], "--out", str(again)]) == 0  # as retyped
    assert json.loads(again.read_text())["hardware"] == report["hardware"]
    capsys.readouterr()
    assert main(["hardware-jobs", "cancel", report["run_id"]]) == 0
    assert "already ended; nothing was cancelled" in capsys.readouterr().err

    def disk_full(*_args) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:  # the jobs run, then the report cannot be written
        patch.setattr("hqnn_desktop.core.storage.atomic_write_json", disk_full)
        assert main(["hardware", "--pack", str(pack), "--backend", "fake_manila", "--input", str(val),
                     "--labels-from-folders", "--batch-size", "24", "--out", str(tmp_path / "lost.json")]) == 1
    err = capsys.readouterr().err
    run_id = err.split("hardware-jobs fetch ")[-1].split()[0]
    assert "No space left on device" in err and not (tmp_path / "lost.json").exists()
    assert main(["hardware-jobs", "fetch", run_id, "--out", str(tmp_path / "found.json")]) == 0
    assert json.loads((tmp_path / "found.json").read_text())["n_images"] == 24
    assert main(["hardware", "--pack", str(pack), "--backend", "ibm_torino", "--input", str(val),
                 "--out", str(out)]) == 2
    # The pack is retrained in place (another seed, then fewer qubits): the run's measurements are
    # never read with models they were not made for.
    for change, why in ((["--seed", "7"], "retrained or replaced since run"), (["--qubits", "2"], "measured 3 qubits")):
        assert main(["train", str(train), "--val-dir", str(val), "--name", "hw", "--out", str(pack), "--qubits", "3",
                     "--layers", "1", "--head-epochs", "1", "--input-size", "64", "--models", "hqnn", "--replace", *change]) == 0
        capsys.readouterr()
        assert main(["hardware-jobs", "fetch", run_id, "--out", str(tmp_path / "mixed.json")]) == 1
        assert why in capsys.readouterr().err and not (tmp_path / "mixed.json").exists()
    assert main(["hardware", "--pack", str(pack), "--backend", "fake_nowhere", "--input", str(val),
                 "--out", str(out)]) == 2


def test_a_run_stopped_during_submission_is_recorded_as_stopped(tmp_path):
    import pytest

    from hqnn_desktop.core.packs import load_pack
    from hqnn_desktop.hardware.jobs import JobStore
    from hqnn_desktop.hardware.rerun import execute, plan_run
    from hqnn_desktop.hardware.runner import Cancelled

    from .conftest import BUNDLED, SAMPLES

    paths = sorted(str(p) for p in (SAMPLES / "pbc8").rglob("*.jpg"))[:6]
    plan = plan_run(load_pack(BUNDLED / "pbc8"), paths, "fake_brisbane",
                    options=RunOptions(shots=256, batch_size=2, seed=1))
    store = JobStore(tmp_path / "runs")
    submitted = []
    with pytest.raises(Cancelled):
        execute(plan, store, on_job=lambda job, k, n: submitted.append(k), cancelled=lambda: len(submitted) >= 1)
    (record,) = store.all()
    assert record.status == "STOPPED" and len(record.jobs) == 1 and record.n_jobs_planned == 3

    def ctrl_c(job, k, n):  # the command line's Ctrl+C arrives as KeyboardInterrupt, mid-submission
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(plan, store, on_job=ctrl_c)
    assert [r.status for r in store.all()] == ["STOPPED", "STOPPED"]


def test_a_run_is_found_by_the_first_characters_of_its_id_unless_they_fit_several(tmp_path):
    import pytest

    from hqnn_desktop.hardware.jobs import AmbiguousRunId, JobStore, RunRecord

    store = JobStore(tmp_path / "runs")
    for run_id in ("ab12cd34ef56", "ab12ff000000", "9f00aa11bb22"):
        store.save(RunRecord(run_id=run_id, pack="pbc8", backend="fake_brisbane", backend_kind="fake", created=1.0,
                             options=RunOptions().to_dict(), inputs={"paths": [], "codes": [], "sim_z": []}))
    assert store.get("9f00").run_id == store.get("9F00AA").run_id == "9f00aa11bb22"
    assert store.get("ab12c").run_id == "ab12cd34ef56"
    with pytest.raises(AmbiguousRunId, match="2 hardware runs begin with ab12 .*type more"):
        store.get("ab12")
    for unknown in ("9f0", "ffff", "", "../x"):  # too short to stand for a run, or no run at all
        with pytest.raises(KeyError):
            store.get(unknown)
