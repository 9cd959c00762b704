"""The IBM Quantum service layer at its boundary (stand-in cloud), the job store, and the emulation."""

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from hqnn_desktop.hardware import service as svc
from hqnn_desktop.hardware.credentials import Credentials, CredentialStore
from hqnn_desktop.hardware.jobs import JobStore
from hqnn_desktop.hardware.options import RunOptions
from hqnn_desktop.hardware.service import ServiceError, connect
from tests.ibm_standin import GOOD_KEY, INSTANCE, StandInJob, ibm_cloud, memory_keyring  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
PBC8 = REPO / "resources" / "packs" / "pbc8"
FAST = RunOptions(shots=2000, batch_size=2, resilience_level=0, dynamical_decoupling=False, seed=3)


@pytest.fixture(scope="module")
def pack():
    from hqnn_desktop.core.packs import load_pack

    return load_pack(PBC8, ("hqnn",))


def samples(n: int) -> tuple[list[str], list[int]]:
    from hqnn_desktop.core.datasets import scan_class_folders

    files = scan_class_folders(REPO / "resources" / "samples" / "pbc8", json.loads((PBC8 / "card.json").read_text())
                               ["labels"])
    pick = list(range(0, len(files), max(1, len(files) // n)))[:n]
    return [str(files.paths[i]) for i in pick], [int(files.targets[i]) for i in pick]


def test_connection_lists_the_account_backends(ibm_cloud, memory_keyring):  # noqa: F811
    CredentialStore().save(Credentials(GOOD_KEY, INSTANCE))
    rows = svc.test_connection()
    assert {r.name for r in rows} == {"ibm_torino", "ibm_brisbane", "ibm_fez"}
    assert all(r.num_qubits >= 127 and r.operational and r.pending_jobs == 0 for r in rows)
    assert ibm_cloud.logins[-1] == {"channel": "ibm_quantum_platform", "instance": INSTANCE}


@pytest.mark.parametrize("creds,network,words", [
    (Credentials("wrong-key-123456789"), True, "did not accept the API key"),
    (Credentials(GOOD_KEY), False, "Cannot reach IBM Quantum"),
    (Credentials(GOOD_KEY, "crn:v1:bluemix:public:quantum-computing:us-east:a/x:y::"), True,
     "does not know the instance"),
])
def test_failures_are_explained(ibm_cloud, memory_keyring, creds, network, words):  # noqa: F811
    ibm_cloud.network_up = network
    with pytest.raises(ServiceError, match=words) as err:
        svc.test_connection(creds)
    assert creds.token not in str(err.value)


def test_nothing_saved_and_unknown_device(ibm_cloud, memory_keyring, pack):  # noqa: F811
    from hqnn_desktop.hardware.rerun import BackendError, resolve_backend

    with pytest.raises(ServiceError, match="No IBM Quantum API key is saved"):
        connect()
    with pytest.raises(BackendError, match="save your IBM Quantum API key"):
        resolve_backend("ibm_torino", 8)
    CredentialStore().save(Credentials(GOOD_KEY))
    with pytest.raises(ServiceError, match="no such backend"):
        resolve_backend("ibm_nowhere", 8, connect())
    assert resolve_backend("ibm_fez", 8, connect()).name == "ibm_fez"


def test_real_run_is_recorded_fetched_after_restart_and_cancelled(ibm_cloud, memory_keyring, pack):  # noqa: F811
    """A run on 'ibm_torino' (the stand-in's calibrated device) whose jobs were still queued when the app
    closed: a new JobStore finds it, fetch collects finished jobs, cancel stops a queued one, a failed
    job says why, and the report is rebuilt from the record alone."""
    from hqnn_desktop.hardware.rerun import cancel_run, execute, plan_run, refresh_run, report_for

    CredentialStore().save(Credentials(GOOD_KEY, INSTANCE))
    paths, truth = samples(5)
    plan = plan_run(pack, paths, "ibm_torino", truth, FAST, service=connect())
    assert plan.kind == "real" and plan.n_jobs == math.ceil(5 / 2) == 3 and plan.qpu_seconds > 0
    assert "5 circuits" in plan.summary() and "2000 shots" in plan.summary()
    results = {}
    report = execute(plan, JobStore(), on_job=lambda job, k, n: results.setdefault(job.job_id(), job.result()))
    assert report["n_jobs"] == 3 and report["agreement"] >= 0.6
    run_id = report["run_id"]
    ids = report["jobs"]
    # The app closed while the cloud still held the jobs: forget what was fetched.
    store = JobStore()
    record = store.get(run_id)
    for entry in record.jobs:
        entry.status, entry.z = "QUEUED", None
    store.save(record)
    ibm_cloud.jobs = {ids[0]: StandInJob(ids[0], results[ids[0]], "DONE"),
                      ids[1]: StandInJob(ids[1], results[ids[1]], "QUEUED"),
                      ids[2]: StandInJob(ids[2], results[ids[2]], "RUNNING")}
    restarted = JobStore()
    assert [r.run_id for r in restarted.all()] == [run_id] and restarted.get(ids[1]).run_id == run_id
    record = refresh_run(restarted, run_id)
    assert [j.status for j in record.jobs] == ["DONE", "QUEUED", "RUNNING"] and not record.complete
    with pytest.raises(ServiceError, match="not complete"):
        report_for(record)
    record = cancel_run(restarted, run_id)
    assert [j.status for j in record.jobs] == ["DONE", "CANCELLED", "CANCELLED"]
    assert JobStore().get(run_id).status == "CANCELLED"
    # Fetch once more after the cloud finished them after all (and one failed).
    ibm_cloud.jobs[ids[1]].state = "DONE"
    ibm_cloud.jobs[ids[2]] = StandInJob(ids[2], None, "ERROR", "Error code 1517: the circuit is too deep")
    for entry in record.jobs[1:]:
        entry.status = "QUEUED"
    restarted.save(record)
    record = refresh_run(JobStore(), run_id)
    assert record.jobs[2].status == "ERROR" and "1517" in record.jobs[2].error
    ibm_cloud.jobs[ids[2]] = StandInJob(ids[2], results[ids[2]], "DONE")
    record.jobs[2].status = "QUEUED"
    restarted.save(record)
    rebuilt = report_for(refresh_run(JobStore(), run_id))
    assert rebuilt["hardware"] == report["hardware"] and rebuilt["agreement"] == report["agreement"]
    assert [r["z_hardware"] for r in rebuilt["images"]] == [r["z_hardware"] for r in report["images"]]


def test_cli_asks_before_real_hardware_and_no_means_nothing(ibm_cloud, memory_keyring, monkeypatch,  # noqa: F811
                                                            tmp_path, capsys):
    from hqnn_desktop.cli import main

    CredentialStore().save(Credentials(GOOD_KEY, INSTANCE))
    paths, _ = samples(2)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    out = tmp_path / "r.json"
    assert main(["hardware", "--pack", str(PBC8), "--backend", "ibm_brisbane", "--input", *paths,
                 "--shots", "1000", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "2 circuits" in err and "QPU time" in err and "Nothing submitted" in err
    assert not out.exists() and JobStore().all() == []
    assert main(["hardware-jobs", "fetch", "nope"]) == 2


def test_emulation_matches_the_noiseless_circuit_closely():
    """Best-chain layout keeps the circuit on n qubits; the density-matrix emulator of a calibrated
    device stays close to the exact circuit and is fast."""
    import time

    import torch
    from qiskit_ibm_runtime.fake_provider import FakeBrisbane

    from hqnn_desktop.core.circuits import QuantumLayer
    from hqnn_desktop.hardware.runner import run_quantum_layer, transpile_layer

    rng = np.random.default_rng(2)
    layer = QuantumLayer(8, 1)
    with torch.no_grad():
        layer.weights.copy_(torch.tensor(rng.uniform(-1, 1, (1, 8, 3))))
    codes = rng.uniform(-0.9, 0.9, (6, 8))
    exact = layer(torch.tensor(codes)).detach().numpy()
    backend = FakeBrisbane()
    assert len(transpile_layer(backend, 8, 1).physical_qubits) == 8
    start = time.time()
    measured, jobs = run_quantum_layer(codes, layer.weights.detach().numpy(), backend, FAST)
    assert time.time() - start < 30 and len(jobs) == 3
    assert np.abs(measured - exact).mean() < 0.1
    assert np.corrcoef(measured.ravel(), exact.ravel())[0, 1] > 0.95


def test_account_commands(ibm_cloud, memory_keyring, monkeypatch, capsys):  # noqa: F811
    from hqnn_desktop.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{GOOD_KEY}\n"))  # piped in, as from a password manager
    assert main(["hardware-account", "save", "--instance", INSTANCE]) == 0
    assert CredentialStore().load().instance == INSTANCE
    assert main(["hardware-account", "where"]) == 0
    assert main(["hardware-account", "test"]) == 0
    ibm_cloud.network_up = False
    assert main(["hardware-account", "test"]) == 1
    assert main(["hardware-account", "forget"]) == 0 and CredentialStore().load() is None
    printed = capsys.readouterr()
    assert "ibm_torino" in printed.out and "Saved in the system keyring" in printed.out
    assert "Cannot reach IBM Quantum" in printed.err and GOOD_KEY not in printed.out + printed.err
    assert "credentials removed" in printed.err and "echoed" not in printed.err
    assert main(["hardware-account", "forget"]) == 0
    assert "nothing to remove" in capsys.readouterr().err


def test_noiseless_simulator_with_default_options_matches_the_circuit():
    """aer_simulator has no gate timings: dynamical decoupling is dropped, and <Z> is exact up to shot noise."""
    import torch

    from hqnn_desktop.core.circuits import QuantumLayer
    from hqnn_desktop.hardware.rerun import resolve_backend
    from hqnn_desktop.hardware.runner import run_quantum_layer, usable_options

    backend = resolve_backend("aer_simulator", 3)
    assert not usable_options(backend, RunOptions()).dynamical_decoupling
    rng = np.random.default_rng(5)
    layer = QuantumLayer(3, 1)
    with torch.no_grad():
        layer.weights.copy_(torch.tensor(rng.uniform(-1, 1, (1, 3, 3))))
    codes = rng.uniform(-0.9, 0.9, (4, 3))
    measured, jobs = run_quantum_layer(codes, layer.weights.detach().numpy(), backend, RunOptions(shots=8000, seed=1))
    assert len(jobs) == 1
    np.testing.assert_allclose(measured, layer(torch.tensor(codes)).detach().numpy(), atol=0.04)


def test_a_damaged_run_record_hides_no_other_run_and_is_named_when_asked_for(capsys):
    from hqnn_desktop.cli import main

    store = JobStore()
    good = store.new("pbc8", "fake_brisbane", "fake", {}, {"n_images": 2}, 1)
    for name, text in (("aaaa1", "null"), ("aaaa2", "[]"), ("aaaa3", '"x"'), ("aaaa4", "{bad\x01"),
                       ("aaaa5", json.dumps({**json.loads(store._path(good.run_id).read_text()),
                                             "run_id": "aaaa5", "created": "yesterday"}))):
        (store.folder / f"{name}.json").write_text(text)
    (store.folder / "aaaa6.json").mkdir()
    assert [r.run_id for r in store.all()] == [good.run_id]
    assert main(["hardware-jobs", "list"]) == 0
    listed = capsys.readouterr()
    assert good.run_id in listed.out and listed.err.count("is damaged") == 6  # each one said, none hidden
    assert main(["hardware-jobs", "fetch", "aaaa4"]) == 1
    err = capsys.readouterr().err
    assert "The record of hardware run aaaa4" in err and "is damaged" in err and "Traceback" not in err
    assert (store.folder / "aaaa4.json").read_text() == "{bad\x01"  # left as it was
