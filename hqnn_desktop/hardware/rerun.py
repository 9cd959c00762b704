"""Rerun a pack's HQNN with its quantum layer on a backend, beside the local simulation.

Bottleneck codes come from the local backbone; the circuit runs on the backend
(batched jobs); the classifier finishes locally on the returned <Z> values. The
report puts simulation and backend side by side: per-image agreement, accuracy
and macro-F1 of each (when labels are known), and the <Z> values of both. The
local half (:class:`LocalPass`) is kept with every job record, so a report can
be rebuilt from a job fetched days later.
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.calibration import calibrated_softmax, temperature_of
from ..core.metrics import classification_report
from ..core.packs import Pack
from ..core.predict import Engine
from .jobs import FINAL, JobEntry, JobStore, RunRecord
from .options import RunOptions
from .runner import (
    Cancelled,
    TranspiledLayer,
    estimate_qpu_seconds,
    expectation_values,
    submit_batches,
    transpile_layer,
    usable_options,
)
from .service import ServiceError, connect, explain, get_job, job_status

SIMULATOR_NAMES = ("aer_simulator", "simulator")
#: IBM Quantum names its devices ibm_<place> (the older ones ibmq_<place>).
REAL_PREFIXES = ("ibm_", "ibmq_")


class BackendError(ValueError):
    """A backend name that cannot be used here, explained."""


class NothingToRun(ValueError):
    """None of a run's images could be used, so nothing is submitted and no run is recorded."""


def backend_kind(name: str) -> str:
    """'simulator', 'fake' (calibrated local emulation), 'real' (an IBM Quantum device) or 'unknown'."""
    if name in SIMULATOR_NAMES:
        return "simulator"
    if name.startswith("fake_"):
        return "fake"
    return "real" if name.startswith(REAL_PREFIXES) else "unknown"


def check_backend_name(name: str) -> None:
    """Raise :class:`BackendError` naming the known backends when ``name`` is none of them.

    Without this a typo (``aer_simulater``) was taken for an IBM device and answered
    with a request for an API key, which sends the user down the wrong path.
    """
    kind = backend_kind(name)
    fakes = fake_backend_names() if kind in ("fake", "unknown") else []
    if kind in ("simulator", "real") or name in fakes:
        return
    close = difflib.get_close_matches(name, [SIMULATOR_NAMES[0], *fakes], n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    examples = [f for f in ("fake_brisbane", "fake_torino", "fake_fez") if f in fakes] or fakes[:3]
    raise BackendError(f"Unknown backend '{name}'.{hint} Use aer_simulator (noiseless), an IBM Quantum device "
                       "of your account (its name starts with ibm_, for example ibm_torino) or one of the "
                       f"{len(fakes)} fake devices with the calibrated noise of a real one (for example "
                       f"{', '.join(examples)}; the Hardware tab's backend list has them all).")


def _fake_devices() -> dict:
    """Name -> class of every fake device shipped with qiskit-ibm-runtime (nothing is instantiated)."""
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    return {cls.backend_name: cls for cls in vars(fake_provider).values()
            if isinstance(cls, type) and issubclass(cls, FakeBackendV2) and getattr(cls, "backend_name", None)}


def fake_backend_names() -> list[str]:
    """Names of the fake devices shipped with qiskit-ibm-runtime."""
    return sorted(_fake_devices())


def resolve_backend(name: str, min_qubits: int, service=None):
    """The backend object for ``name``: the noiseless ``aer_simulator``, a ``fake_*`` device, or a real
    device of the account behind ``service`` (a ``QiskitRuntimeService``)."""
    check_backend_name(name)
    kind = backend_kind(name)
    if kind == "simulator":
        from qiskit_aer import AerSimulator

        return AerSimulator()
    if kind == "fake":
        backend = _fake_devices()[name]()
    else:
        if service is None:
            raise BackendError(f"'{name}' is a real IBM Quantum backend: save your IBM Quantum API key and "
                               "instance first (Hardware tab, or run the fake_* backends offline).")
        from .service import backend_by_name

        backend = backend_by_name(service, name)
    if backend.num_qubits < min_qubits:
        raise BackendError(f"{name} has {backend.num_qubits} qubits; this pack's circuit needs {min_qubits}.")
    return backend


@dataclass
class LocalPass:
    """The local half of a rerun: usable images, their bottleneck codes and simulated <Z> values."""

    paths: list[str]
    codes: np.ndarray
    sim_z: np.ndarray
    truth: list[int] | None
    unusable: list[dict]

    def to_dict(self) -> dict:
        return {"paths": self.paths, "codes": self.codes.tolist(), "sim_z": self.sim_z.tolist(),
                "truth": self.truth, "unusable": self.unusable}

    @classmethod
    def from_dict(cls, data: dict) -> LocalPass:
        return cls(list(data["paths"]), np.asarray(data["codes"], np.float64),
                   np.asarray(data["sim_z"], np.float64), data.get("truth"), list(data.get("unusable", [])))


def local_pass(pack: Pack, paths: list[str], truth: list[int] | None = None,
               cancelled: Callable[[], bool] = lambda: False) -> LocalPass:
    """Backbone, bottleneck and simulated circuit for every image (one engine pass)."""
    n = pack.card["n_qubits"]
    # One orientation: the circuit runs on each picture's code as it is (one circuit per picture).
    results = list(Engine(pack, ("hqnn",), orientations=1).classify(paths, cancelled=cancelled, keep_latents=True))
    usable = [i for i, r in enumerate(results) if not r.error]
    codes = np.stack([results[i].codes["hqnn"] for i in usable]) if usable else np.zeros((0, n))
    sim_z = np.stack([results[i].embeddings["hqnn"] for i in usable]) if usable else np.zeros((0, n))
    return LocalPass(paths=[results[i].path for i in usable], codes=codes.astype(np.float64),
                     sim_z=sim_z.astype(np.float64),
                     truth=[int(truth[i]) for i in usable] if truth is not None else None,
                     unusable=[{"path": r.path, "error": r.error} for r in results if r.error])


def _probabilities(pack: Pack, z: np.ndarray) -> np.ndarray:
    """The HQNN's probabilities from <Z> values, calibrated like the engine's, so that simulated and
    hardware probabilities stay comparable with each other and with the Classify tab."""
    with torch.no_grad():
        logits = pack.heads["hqnn"].classifier(torch.as_tensor(z, dtype=torch.float32))
        return calibrated_softmax(logits, temperature_of(pack.card, "hqnn")).numpy()


def build_report(pack: Pack, backend_name: str, options: RunOptions, local: LocalPass, hw_z: np.ndarray,
                 jobs: list[str]) -> dict:
    """Simulation vs backend for the same images: agreement, metrics of each, per-image rows with <Z>."""
    labels = pack.labels
    sim_p, hw_p = _probabilities(pack, local.sim_z), _probabilities(pack, hw_z)
    rows = [{"path": path, "simulated": labels[int(sim_p[j].argmax())], "hardware": labels[int(hw_p[j].argmax())],
             "truth": labels[local.truth[j]] if local.truth is not None else None,
             "z_simulated": [round(float(v), 6) for v in local.sim_z[j]],
             "z_hardware": [round(float(v), 6) for v in hw_z[j]]}
            for j, path in enumerate(local.paths)]
    report = {"pack": pack.name, "backend": backend_name, "labels": labels, "options": options.to_dict(),
              "n_images": len(local.paths), "jobs": list(jobs), "n_jobs": len(jobs), "unusable": local.unusable,
              "agreement": float((sim_p.argmax(1) == hw_p.argmax(1)).mean()) if len(local.paths) else 0.0,
              "simulated": {}, "hardware": {}, "images": rows}
    if local.truth is not None and local.paths:
        y = np.asarray(local.truth)
        for key, p in (("simulated", sim_p), ("hardware", hw_p)):
            rep = classification_report(y, p, labels)
            report[key] = {k: rep[k] for k in ("accuracy", "macro_f1", "confusion_matrix")}
        report["macro_f1_drop"] = report["simulated"]["macro_f1"] - report["hardware"]["macro_f1"]
        report["accuracy_drop"] = report["simulated"]["accuracy"] - report["hardware"]["accuracy"]
    return report


@dataclass
class Plan:
    """Everything decided before a submission: what the confirmation shows, what execution needs."""

    pack: Pack
    backend_name: str
    kind: str
    backend: object
    options: RunOptions
    local: LocalPass
    layer: TranspiledLayer
    n_jobs: int
    qpu_seconds: float

    def summary(self) -> str:
        """Circuits, shots and QPU time in words, for the confirmation before real hardware."""
        return (f"{self.local.codes.shape[0]} circuits (one per image) on {self.backend_name}, "
                f"{self.options.shots} shots each, in {self.n_jobs} job(s); "
                f"{len(self.layer.physical_qubits)} qubits; estimated QPU time about "
                f"{self.qpu_seconds:.0f} s (resilience level {self.options.resilience_level}).")


def plan_run(pack: Pack, paths: list[str], backend_name: str, truth: list[int] | None = None,
             options: RunOptions | None = None, service=None,
             cancelled: Callable[[], bool] = lambda: False) -> Plan:
    """Resolve the backend, run the local half, transpile once and estimate the QPU time."""
    backend = resolve_backend(backend_name, pack.card["n_qubits"], service)
    options = usable_options(backend, options or RunOptions())
    local = local_pass(pack, paths, truth, cancelled)
    if not local.paths:
        reasons = "; ".join(f"{u['path']}: {u['error']}" for u in local.unusable[:3])
        more = "; ..." if len(local.unusable) > 3 else ""
        raise NothingToRun(f"No image could be used ({len(paths)} given), so nothing was submitted"
                           + (f". {reasons}{more}" if reasons else "."))
    layer = transpile_layer(backend, pack.card["n_qubits"], pack.card["layers"], options.optimization_level)
    n = len(local.paths)
    return Plan(pack, backend_name, backend_kind(backend_name), backend, options, local, layer,
                math.ceil(n / options.batch_size), estimate_qpu_seconds(layer, backend, n, options))


def _wait(job, cancelled: Callable[[], bool], poll_s: float) -> None:
    while job_status(job) not in FINAL:
        if cancelled():
            raise Cancelled("Stopped waiting; the jobs stay queued and can be fetched later from the jobs list.")
        time.sleep(poll_s)


def execute(plan: Plan, store: JobStore | None = None, on_job: Callable[[object, int, int], None] | None = None,
            cancelled: Callable[[], bool] = lambda: False, poll_s: float = 5.0,
            on_record: Callable[[str], None] | None = None) -> dict:
    """Submit the planned batches (recording each job as it is queued), wait, and build the report.
    ``on_record`` is told the run's id once it is recorded, before anything is submitted: a user
    who stops waiting needs it to fetch the results later."""
    store = store or JobStore()
    record = store.new(plan.pack.name, plan.backend_name, plan.kind, plan.options.to_dict(), plan.local.to_dict(),
                       plan.n_jobs, str(plan.pack.path), heads_checksum(plan.pack))
    if on_record is not None:
        on_record(record.run_id)
    weights = plan.pack.heads["hqnn"].transform.weights.detach().numpy()

    def recorded(job, k: int, n: int) -> None:
        record.jobs.append(JobEntry(job.job_id(), (k - 1) * plan.options.batch_size,
                                    min(k * plan.options.batch_size, len(plan.local.paths)), job_status(job)))
        store.save(record)
        if on_job is not None:
            on_job(job, k, n)

    try:
        jobs = [job for job, _ in submit_batches(plan.local.codes, weights, plan.backend, plan.layer, plan.options,
                                                 recorded, cancelled=cancelled)]
    except BaseException:  # cancelled, Ctrl+C, the service failing mid-way: the rest will never be submitted
        record.stopped = True  # not "SUBMITTING" for ever in the runs list
        store.save(record)
        raise
    for job, entry in zip(jobs, record.jobs):
        _wait(job, cancelled, poll_s)
        _settle(entry, job)
        store.save(record)
    if not record.complete:
        raise ServiceError(f"Run {record.run_id} did not finish: "
                           + "; ".join(f"{j.job_id}: {j.status}" for j in record.jobs if j.z is None))
    return report_for(record, plan.pack)


def _settle(entry: JobEntry, job) -> None:
    """Record a finished job's status and, when done, its <Z> values."""
    entry.status = job_status(job)
    if entry.status == "DONE" and entry.z is None:
        entry.z = expectation_values(job.result()).round(8).tolist()
    elif entry.status == "ERROR":
        try:
            job.result()
        except Exception as exc:  # noqa: BLE001 - the failure reason, scrubbed
            entry.error = explain(exc)


def report_for(record: RunRecord, pack: Pack | None = None) -> dict:
    """The report of a complete run, rebuilt from its record (and the pack: its folder when it is still
    there, else the installed pack of that name)."""
    if not record.complete:
        raise ServiceError(f"Run {record.run_id} is not complete yet ({record.status}); fetch it first.")
    if pack is None:
        from ..core.packs import PackError, load_pack, resolve_pack

        folder = record.pack_path if record.pack_path and Path(record.pack_path).is_dir() else record.pack
        try:
            pack = load_pack(resolve_pack(folder), ("hqnn",))
        except PackError as exc:
            raise ServiceError(f"The report of run {record.run_id} needs the pack it ran, {record.pack}, which "
                               f"cannot be loaded now: {exc}") from None
    _check_pack_fits(record, pack)
    hw_z = np.concatenate([np.asarray(j.z, np.float64) for j in record.jobs])
    report = build_report(pack, record.backend, RunOptions.from_dict(record.options),
                          LocalPass.from_dict(record.inputs), hw_z, [j.job_id for j in record.jobs])
    report["run_id"] = record.run_id
    return report


def heads_checksum(pack: Pack) -> str:
    """The checksum of the pack's heads file, as its card gives it ("" if it gives none)."""
    entry = pack.card.get("files", {}).get("heads.safetensors", {})
    return entry.get("sha256", "") if isinstance(entry, dict) else ""


def _check_pack_fits(record: RunRecord, pack: Pack) -> None:
    """Refuse to rebuild a report with a pack other than the one the run used: its classifier would read
    the measured values with other weights (or fail on a different number of qubits)."""
    widths, qubits = {len(row) for row in record.inputs["sim_z"]}, int(pack.card["n_qubits"])
    if widths - {qubits}:
        raise ServiceError(f"Run {record.run_id} measured {widths.pop()} qubits, but the pack {pack.name} now has "
                           f"{qubits}: it was retrained or replaced since, so the run cannot be reported "
                           "with it. The measured values are kept in the run's record.")
    if record.heads_sha256 and heads_checksum(pack) != record.heads_sha256:
        raise ServiceError(f"The pack {pack.name} was retrained or replaced since run {record.run_id}, so its "
                           "models would read the run's measurements wrongly and no report is built. Reinstall "
                           "the pack as it was to report the run; the measured values are kept in its record.")


def refresh_run(store: JobStore, run_id: str, service=None) -> RunRecord:
    """Ask IBM Quantum for the status of a run's unfinished jobs; store the results of finished ones."""
    record = store.get(run_id)
    pending = [j for j in record.jobs if j.status not in FINAL or (j.status == "DONE" and j.z is None)]
    if pending and record.backend_kind == "real":
        service = service or connect()
        for entry in pending:
            _settle(entry, get_job(service, entry.job_id))
        store.save(record)
    return record


def cancel_run(store: JobStore, run_id: str, service=None) -> RunRecord:
    """Cancel a run's jobs that are still queued or running on IBM Quantum."""
    record = store.get(run_id)
    live = [j for j in record.jobs if j.status not in FINAL]
    if live and record.backend_kind == "real":
        service = service or connect()
        for entry in live:
            job = get_job(service, entry.job_id)
            try:
                job.cancel()
            except Exception as exc:  # noqa: BLE001 - any runtime failure becomes a plain message
                raise ServiceError(explain(exc)) from None
            entry.status = job_status(job)
        store.save(record)
    return record


def rerun(pack: Pack, paths: list[str], backend_name: str, truth: list[int] | None = None,
          options: RunOptions | None = None, on_job: Callable[[object, int, int], None] | None = None,
          service=None, cancelled: Callable[[], bool] = lambda: False, store: JobStore | None = None) -> dict:
    """The report of ``hqnn-desktop hardware``: simulation vs backend for the pack's HQNN."""
    plan = plan_run(pack, paths, backend_name, truth, options, service, cancelled)
    return execute(plan, store, on_job, cancelled)
