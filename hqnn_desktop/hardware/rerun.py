"""Rerun a pack's HQNN with its quantum layer on a backend, beside the local simulation.

Bottleneck codes come from the local backbone; the circuit runs on the backend
(batched jobs); the classifier finishes locally on the returned <Z> values. The
report puts simulation and backend side by side: per-image agreement, accuracy
and macro-F1 of each (when labels are known), and the <Z> values of both.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..core.metrics import classification_report
from ..core.packs import Pack
from ..core.predict import Engine
from .runner import run_quantum_layer


class BackendError(ValueError):
    """A backend name that cannot be used here, explained."""


def resolve_backend(name: str, min_qubits: int):
    """A fake backend (``fake_*``, calibrated noise) or the noiseless ``aer_simulator``."""
    if name in ("aer_simulator", "simulator"):
        from qiskit_aer import AerSimulator

        return AerSimulator()
    if name.startswith("fake_"):
        from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

        try:
            backend = FakeProviderForBackendV2().backend(name)
        except Exception:  # the provider raises a bare QiskitBackendNotFoundError
            names = sorted(b.name for b in FakeProviderForBackendV2().backends())
            raise BackendError(f"No fake backend named {name}. Available: {', '.join(names)}.") from None
        if backend.num_qubits < min_qubits:
            raise BackendError(f"{name} has {backend.num_qubits} qubits; this pack's circuit needs {min_qubits}.")
        return backend
    raise BackendError(
        f"'{name}' would be a real IBM Quantum backend; this version runs only fake backends (fake_*) and "
        "the noiseless aer_simulator. Saved IBM credentials are needed for real hardware.")


def rerun(pack: Pack, paths: list[str], backend_name: str, truth: list[int] | None = None,
          shots: int = 4096, batch_size: int = 64, optimization_level: int = 1,
          on_job: Callable[[str, int, int], None] | None = None) -> dict:
    """The report of ``hqnn-desktop hardware``: simulation vs backend for the pack's HQNN."""
    head = pack.heads["hqnn"]
    backend = resolve_backend(backend_name, pack.card["n_qubits"])
    results = list(Engine(pack, ("hqnn",)).classify(paths, keep_latents=True))
    usable = [i for i, r in enumerate(results) if not r.error]
    codes = np.stack([results[i].codes["hqnn"] for i in usable]) if usable else np.zeros((0, pack.card["n_qubits"]))
    sim_z = np.stack([results[i].embeddings["hqnn"] for i in usable]) if usable else codes
    hw_z, jobs = run_quantum_layer(codes, head.transform.weights.detach().numpy(), backend, shots=shots,
                                   batch_size=batch_size, optimization_level=optimization_level, on_job=on_job)
    with torch.no_grad():
        sim_p = torch.softmax(head.classifier(torch.as_tensor(sim_z, dtype=torch.float32)), 1).numpy()
        hw_p = torch.softmax(head.classifier(torch.as_tensor(hw_z, dtype=torch.float32)), 1).numpy()
    labels = pack.labels
    rows = []
    for j, i in enumerate(usable):
        rows.append({"path": results[i].path, "simulated": labels[int(sim_p[j].argmax())],
                     "hardware": labels[int(hw_p[j].argmax())],
                     "truth": labels[truth[i]] if truth is not None else None,
                     "z_simulated": [round(float(v), 6) for v in sim_z[j]],
                     "z_hardware": [round(float(v), 6) for v in hw_z[j]]})
    report = {"pack": pack.name, "backend": backend_name,
              "options": {"shots": shots, "batch_size": batch_size, "optimization_level": optimization_level},
              "n_images": len(usable), "jobs": jobs, "n_jobs": len(jobs),
              "unusable": [{"path": r.path, "error": r.error} for r in results if r.error],
              "agreement": float((sim_p.argmax(1) == hw_p.argmax(1)).mean()) if usable else 0.0,
              "simulated": {}, "hardware": {}, "images": rows}
    if truth is not None and usable:
        y = np.array([truth[i] for i in usable])
        for key, p in (("simulated", sim_p), ("hardware", hw_p)):
            rep = classification_report(y, p, labels)
            report[key] = {k: rep[k] for k in ("accuracy", "macro_f1", "confusion_matrix")}
        report["macro_f1_drop"] = report["simulated"]["macro_f1"] - report["hardware"]["macro_f1"]
    return report
