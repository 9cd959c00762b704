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
    good = store.new("pbc8", "fake_brisbane", "fake", {}, {"paths": ["a.jpg"], "codes": [[0.1]], "sim_z": [[0.2]]}, 1)
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


def record_file(folder: Path, name: str, created: float = 1_700_000_000, **changes) -> Path:
    """The record file of run ``name`` as this version writes it (two images, one finished job), with
    ``changes``."""
    data = {"run_id": name, "pack": "pbc8", "backend": "fake_brisbane", "backend_kind": "fake", "created": created,
            "options": {"shots": 256, "seed": 1},
            "inputs": {"paths": ["a.jpg", "b.jpg"], "codes": [[0.1, 0.2], [0.3, 0.4]],
                       "sim_z": [[0.5, -0.5], [0.2, 0.1]], "truth": [0, 1], "unusable": []},
            "jobs": [{"job_id": "job-1", "start": 0, "stop": 2, "status": "DONE", "z": [[0.4, -0.4], [0.3, 0.0]],
                      "error": None}],
            "n_jobs_planned": 1, "pack_path": "", "stopped": False, "heads_sha256": "0" * 64}
    for key, value in changes.items():  # "jobs__0__start": the start of the first job
        *outer, last = key.split("__")
        target = data
        for part in outer:
            target = target[int(part) if isinstance(target, list) else part]
        if value is DROP:
            del target[last]
        else:
            target[int(last) if isinstance(target, list) else last] = value
    path = folder / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


DROP = object()


@pytest.mark.parametrize("changes, why", [
    ({"inputs": ["a.jpg"]}, "its inputs are not a set of named values"),
    ({"backend": None}, "its backend is not text"),
    ({"backend": DROP}, "its backend is missing"),
    ({"n_jobs_planned": "1"}, "its number of planned jobs is not a whole number"),
    ({"n_jobs_planned": -1}, "its number of planned jobs is not a whole number of 0 or more"),
    ({"run_id": "../elsewhere"}, "its run id is not a run id"),
    ({"created": True}, "its creation time is not a time"),
    ({"created": 1e300}, "its creation time is not a time"),  # beyond what a date can show
    ({"created": 10**400}, "its creation time is not a time"),  # beyond what a float can hold
    ({"inputs__sim_z": [[0.5, float("nan")], [0.2, 0.1]]}, "its simulated <Z> values are not a table of numbers"),
    ({"stopped": "no"}, "its stopped mark is not true or false"),
    ({"pack_path": 3}, "its pack folder is not text"),
    ({"options": {"shots": "256"}}, "its options are not usable: the option shots must be a whole number"),
    ({"options": {"shots": 0}}, "its options are not usable: shots must be at least 1"),
    ({"inputs__paths": "a.jpg"}, "its list of images is not a list of texts"),
    ({"inputs__sim_z": [[0.5, "x"], [0.2, 0.1]]}, "its simulated <Z> values are not a table of numbers"),
    ({"inputs__truth": [0]}, "it has 1 true labels for 2 images"),
    ({"inputs__paths": DROP}, "its list of images is missing"),
    ({"jobs": "job-1"}, "its list of jobs is not a list"),
    ({"jobs": ["job-1"]}, "its job 1 is not a set of named values"),
    ({"jobs__0__start": "0"}, "the first image of its job 1 is not a whole number"),
    ({"jobs__0__job_id": 7}, "the id of its job 1 is not text"),
    ({"jobs__0__status": None}, "the status of its job 1 is not text"),
    ({"jobs__0__error": ["x"]}, "the error of its job 1 is not text"),
    ({"jobs__0__z": [[0.4, -0.4], [0.3, "0"]]}, "the <Z> values of its job 1 are not a table of numbers"),
    ({"jobs__0__z": [[0.4, -0.4]]}, "its job 1 has <Z> values for 1 images, not its 2"),
    ({"jobs__0__z": [[0.4], [0.3]]}, "its simulated and measured <Z> values are not all for the same number"),
    ({"jobs__0__stop": 3, "jobs__0__z": None}, "its job 1 is for images 0 to 3"),
    ({"jobs__0__queued": True}, "its job 1 has a field this version does not know: queued"),
])
def test_a_record_with_a_wrong_value_is_damaged_and_hides_no_other_run(tmp_path, changes, why):
    from hqnn_desktop.hardware.jobs import DamagedRecord

    store = JobStore(tmp_path / "jobs")
    record_file(store.folder, "good-1", created=1_700_000_000)
    record_file(store.folder, "good-2", created=1_700_000_100)
    bad = record_file(store.folder, "bad-1", **changes)
    records, problems = store.scan()
    assert [r.run_id for r in records] == ["good-2", "good-1"]  # both still listed, newest first
    assert [(r.status, r.n_images, r.complete) for r in records] == [("DONE", 2, True)] * 2
    (problem,) = problems  # the damaged file named, with what is wrong in it
    assert problem.startswith(f"The record of hardware run bad-1 ({bad}) is damaged ({why}") and problem.endswith(").")
    with pytest.raises(DamagedRecord, match="bad-1"):
        store.get("bad-1")
    assert [r.run_id for r in store.all()] == ["good-2", "good-1"]


def test_a_record_this_version_writes_reads_back_as_it_was(tmp_path):
    from hqnn_desktop.hardware.jobs import RunRecord

    store = JobStore(tmp_path / "jobs")
    path = record_file(store.folder, "good-1", jobs__0__z=None, jobs__0__status="QUEUED")
    record = store.get("good-1")
    assert record.status == "QUEUED" and not record.complete
    assert RunRecord.from_dict(record.to_dict()) == record
    assert json.loads(path.read_text()) == record.to_dict()


@pytest.mark.parametrize("changes, why", [
    ({"inputs": ["a.jpg"]}, "its inputs are not a set of named values"),
    ({"backend": None}, "its backend is not text"),
    ({"n_jobs_planned": "1"}, "its number of planned jobs is not a whole number"),
    ({"jobs__0__stop": "2"}, "the end of its job 1 is not a whole number"),
])
def test_cli_lists_runs_beside_a_wrongly_typed_record_and_refuses_it_in_words(tmp_path, monkeypatch, capsys,
                                                                            changes, why):
    from hqnn_desktop.cli import main

    monkeypatch.setenv("HQNN_DATA_DIR", str(tmp_path / "data"))
    jobs = tmp_path / "data" / "jobs"
    record_file(jobs, "bbbb22223333")
    bad = record_file(jobs, "aaaa11112222", **changes)
    before = bad.read_text()
    assert main(["hardware-jobs", "list"]) == 0
    listed = capsys.readouterr()
    assert "bbbb22223333" in listed.out and "fake_brisbane" in listed.out and "aaaa11112222" not in listed.out
    assert f"The record of hardware run aaaa11112222 ({bad}) is damaged ({why}" in listed.err
    for action in ("fetch", "cancel"):
        assert main(["hardware-jobs", action, "aaaa11112222"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("hqnn-desktop hardware-jobs: The record of hardware run aaaa11112222")
        assert why in err and "Traceback" not in err
    assert bad.read_text() == before  # left as it was
