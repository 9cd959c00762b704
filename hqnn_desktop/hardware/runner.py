"""Run a pack's quantum layer on an IBM backend (real, fake, or simulator), batch by batch.

The circuit is transpiled once per backend; each batch of images is one
Estimator job whose parameter array broadcasts over the batch (never one job
per image). The client-side ``executor_estimator.Estimator`` is used (the
runtime's ``EstimatorV2`` is deprecated since qiskit-ibm-runtime 0.50).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.circuits import encoding_angles, qiskit_circuit


@dataclass
class TranspiledLayer:
    """The VQC transpiled for one backend, with its parameter order and laid-out observables."""

    circuit: object
    observables: list
    x_index: list[int]
    w_index: list[int]
    parameter_kind: list[str]


def transpile_layer(backend, n_qubits: int, layers: int, optimization_level: int = 1) -> TranspiledLayer:
    """Transpile the circuit for ``backend`` once; remember where each parameter goes."""
    from qiskit.transpiler import generate_preset_pass_manager

    qc, x, w, observables = qiskit_circuit(n_qubits, layers)
    isa = generate_preset_pass_manager(optimization_level=optimization_level, backend=backend).run(qc)
    params = list(isa.parameters)
    return TranspiledLayer(
        circuit=isa,
        observables=[[o.apply_layout(isa.layout)] for o in observables],
        x_index=[p.index if p.vector.name == "x" else -1 for p in params],
        w_index=[p.index if p.vector.name == "w" else -1 for p in params],
        parameter_kind=[p.vector.name for p in params],
    )


def parameter_values(layer: TranspiledLayer, codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B, P) parameter array in the transpiled circuit's order for bottleneck ``codes`` (B, n)."""
    import torch

    angles = encoding_angles(torch.as_tensor(codes, dtype=torch.float64)).numpy()
    flat = np.asarray(weights, np.float64).reshape(-1)
    cols = [angles[:, xi] if kind == "x" else np.full(len(angles), flat[wi])
            for kind, xi, wi in zip(layer.parameter_kind, layer.x_index, layer.w_index)]
    return np.stack(cols, axis=1)


def run_quantum_layer(codes: np.ndarray, weights: np.ndarray, backend, shots: int = 4096,
                      batch_size: int = 64, optimization_level: int = 1,
                      on_job: Callable[[str, int, int], None] | None = None) -> tuple[np.ndarray, list[str]]:
    """<Z> of every qubit for each code, measured on ``backend``; returns (expectations (N, n), job ids)."""
    from qiskit_ibm_runtime.executor_estimator import Estimator

    codes = np.asarray(codes, np.float64)
    n = codes.shape[1]
    layers = int(np.asarray(weights).shape[0])
    layer = transpile_layer(backend, n, layers, optimization_level)
    estimator = Estimator(mode=backend)
    estimator.options.default_shots = shots
    out, job_ids = [], []
    n_jobs = math.ceil(len(codes) / batch_size)
    for j in range(n_jobs):
        chunk = codes[j * batch_size:(j + 1) * batch_size]
        job = estimator.run([(layer.circuit, layer.observables, parameter_values(layer, chunk, weights))])
        job_ids.append(job.job_id())
        if on_job is not None:
            on_job(job.job_id(), j + 1, n_jobs)
        out.append(np.asarray(job.result()[0].data.evs).T)
    return (np.concatenate(out) if out else np.zeros((0, n))), job_ids
