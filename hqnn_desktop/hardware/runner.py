"""Run a pack's quantum layer on an IBM backend (real, fake, or simulator), batch by batch.

The circuit is transpiled once per backend (inside the device's best chain of
qubits, :mod:`.layout`); each batch of images is one Estimator job whose
parameter array broadcasts over the batch (never one job per image). The
client-side ``executor_estimator.Estimator`` is used (the runtime's
``EstimatorV2`` is deprecated since qiskit-ibm-runtime 0.50). Fake backends run
in local testing mode on a density-matrix emulator of the qubits the circuit
uses (:mod:`.emulation`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.circuits import encoding_angles, qiskit_circuit
from .emulation import compact_circuit, density_matrix_emulator, is_fake_backend, sub_target
from .layout import best_chain
from .options import RunOptions

#: Gates the noiseless simulator's circuit is written in (those of IBM's Heron devices).
SIMULATOR_BASIS = ["rz", "sx", "x", "cz"]


class Cancelled(Exception):
    """The user stopped the run between two jobs."""


@dataclass
class TranspiledLayer:
    """The VQC transpiled for one backend, with its parameter order and laid-out observables."""

    circuit: object
    observables: list
    x_index: list[int]
    w_index: list[int]
    parameter_kind: list[str]
    physical_qubits: list[int]


def _describe(circuit, observables, physical: list[int]) -> TranspiledLayer:
    params = list(circuit.parameters)
    return TranspiledLayer(
        circuit=circuit, observables=[[o] for o in observables],
        x_index=[p.index if p.vector.name == "x" else -1 for p in params],
        w_index=[p.index if p.vector.name == "w" else -1 for p in params],
        parameter_kind=[p.vector.name for p in params], physical_qubits=physical)


def _widen(circuit, chain: list[int], width: int):
    """Place a circuit transpiled on the chain's sub-target back onto the full device."""
    from qiskit.circuit import QuantumCircuit

    out = QuantumCircuit(width, name=circuit.name)
    for ins in circuit.data:
        out.append(ins.operation, [chain[circuit.find_bit(q).index] for q in ins.qubits])
    return out


def transpile_layer(backend, n_qubits: int, layers: int, optimization_level: int = 2) -> TranspiledLayer:
    """Transpile the circuit for ``backend`` once; remember where each parameter goes."""
    from qiskit.transpiler import generate_preset_pass_manager

    qc, _, _, observables = qiskit_circuit(n_qubits, layers)
    if backend.coupling_map is None:  # the noiseless simulator: all-to-all, any gate
        # Written in IBM's native gates anyway: the Estimator's boxing (samplomatic) mis-handles the
        # parametrised RY/CRX gates a simulator would keep (errors up to 0.2 in <Z>, noiseless).
        isa = generate_preset_pass_manager(optimization_level=optimization_level, basis_gates=SIMULATOR_BASIS,
                                           seed_transpiler=0).run(qc)
        return _describe(isa, [o.apply_layout(isa.layout) for o in observables], list(range(n_qubits)))
    target = backend.target
    chain = best_chain(target, n_qubits)
    if chain is None:
        isa = generate_preset_pass_manager(optimization_level=optimization_level, backend=backend).run(qc)
        laid = [o.apply_layout(isa.layout) for o in observables]
        return _describe(isa, laid, sorted({isa.find_bit(q).index for ins in isa.data for q in ins.qubits}))
    small = generate_preset_pass_manager(optimization_level=optimization_level,
                                         target=sub_target(target, chain)).run(qc)
    final = small.layout.final_index_layout()
    laid = [o.apply_layout([chain[final[v]] for v in range(n_qubits)], num_qubits=backend.num_qubits)
            for o in observables]
    return _describe(_widen(small, chain, backend.num_qubits), laid, sorted(chain))


def execution_mode(backend, layer: TranspiledLayer):
    """Where the Estimator runs and on which circuit: fake backends run on their compact emulator."""
    if not is_fake_backend(backend):
        return backend, layer
    small = compact_circuit(layer.circuit, [o[0] for o in layer.observables])
    return (density_matrix_emulator(backend, small.physical_qubits),
            _describe(small.circuit, small.observables, small.physical_qubits))


def is_ibm_backend(backend) -> bool:
    """True for a device of the IBM cloud (its jobs queue remotely)."""
    from qiskit_ibm_runtime.ibm_backend import IBMBackend

    return isinstance(backend, IBMBackend)


def usable_options(backend, options: RunOptions) -> RunOptions:
    """``options`` as the backend can take them: a simulator without gate timings gets no dynamical
    decoupling (there is no idle time to fill, and scheduling would fail)."""
    from dataclasses import replace

    timed = backend.target.dt is not None
    return options if timed or not options.dynamical_decoupling else replace(options, dynamical_decoupling=False)


def parameter_values(layer: TranspiledLayer, codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B, P) parameter array in the transpiled circuit's order for bottleneck ``codes`` (B, n)."""
    import torch

    angles = encoding_angles(torch.as_tensor(codes, dtype=torch.float64)).numpy()
    flat = np.asarray(weights, np.float64).reshape(-1)
    cols = [angles[:, xi] if kind == "x" else np.full(len(angles), flat[wi])
            for kind, xi, wi in zip(layer.parameter_kind, layer.x_index, layer.w_index)]
    return np.stack(cols, axis=1)


def expectation_values(result) -> np.ndarray:
    """(B, n) <Z> values from an Estimator result of one batch job."""
    return np.asarray(result[0].data.evs, np.float64).T


def estimate_qpu_seconds(layer: TranspiledLayer, backend, n_images: int, options: RunOptions) -> float:
    """Rough QPU time: shots x (circuit duration + repetition delay) per image, plus a per-job overhead.

    Readout mitigation (resilience level >= 1) adds calibration shots, about
    the same number again per job. It is an estimate for the confirmation
    dialog, not IBM's billing.
    """
    try:
        duration = float(layer.circuit.estimate_duration(backend.target, unit="s"))
    except Exception:  # noqa: BLE001 - a target without durations (simulators)
        duration = 0.0
    rep_delay = 250e-6
    n_jobs = math.ceil(n_images / options.batch_size) if n_images else 0
    shots = n_images * options.shots + (n_jobs * options.shots if options.resilience_level >= 1 else 0)
    return shots * (duration + rep_delay) + 2.0 * n_jobs


def submit_batches(codes: np.ndarray, weights: np.ndarray, backend, layer: TranspiledLayer, options: RunOptions,
                   on_job: Callable[[object, int, int], None] | None = None, wait_each: bool | None = None,
                   cancelled: Callable[[], bool] | None = None):
    """One Estimator job per batch of ``codes`` on the transpiled ``layer``; yields ``(job, batch_slice)``.

    With ``wait_each`` (default: for local runs) a job's result is awaited
    before the next is submitted, so progress and cancel work between batches;
    real devices get every batch queued at once.
    """
    from qiskit_ibm_runtime.executor_estimator import Estimator

    codes = np.asarray(codes, np.float64)
    mode, layer = execution_mode(backend, layer)
    estimator = Estimator(mode=mode)
    options.apply(estimator)
    wait_each = not is_ibm_backend(mode) if wait_each is None else wait_each
    n_jobs = math.ceil(len(codes) / options.batch_size)
    for j in range(n_jobs):
        if cancelled is not None and cancelled():
            raise Cancelled("Stopped before all batches were submitted.")
        part = slice(j * options.batch_size, (j + 1) * options.batch_size)
        job = estimator.run([(layer.circuit, layer.observables, parameter_values(layer, codes[part], weights))])
        if wait_each:
            job.result()
        if on_job is not None:
            on_job(job, j + 1, n_jobs)
        yield job, part


def run_quantum_layer(codes: np.ndarray, weights: np.ndarray, backend, options: RunOptions | None = None,
                      on_job: Callable[[object, int, int], None] | None = None,
                      cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, list[str]]:
    """<Z> of every qubit for each code, measured on ``backend``; returns (expectations (N, n), job ids)."""
    options = usable_options(backend, options or RunOptions())
    codes = np.asarray(codes, np.float64)
    layer = transpile_layer(backend, codes.shape[1], int(np.asarray(weights).shape[0]), options.optimization_level)
    jobs = list(submit_batches(codes, weights, backend, layer, options, on_job, cancelled=cancelled))
    out = [expectation_values(job.result()) for job, _ in jobs]
    return (np.concatenate(out) if out else np.zeros((0, codes.shape[1]))), [job.job_id() for job, _ in jobs]
