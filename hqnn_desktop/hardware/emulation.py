"""Fast calibrated emulation of a fake IBM backend: density matrix on the qubits the circuit uses.

Run as is, a fake backend's local testing mode simulates the full device width
(127 or 156 qubits, since the Estimator measures every qubit of the ISA circuit)
with one noisy statevector trajectory per shot: minutes for a few images, and
out of memory on some devices. The transpiled circuit only touches the qubits
of its layout (8 for an 8-qubit pack, a few more after routing), so we keep the
fake backend's transpilation (layout and routing chosen from its calibration),
cut the circuit and the device's target down to those physical qubits, and let
Aer simulate the exact density matrix with the noise model built from that
target (the same per-qubit gate errors, T1/T2 and readout errors). The result is
the same noisy distribution, sampled once per parameter set instead of once per
shot.
"""

from __future__ import annotations

from dataclasses import dataclass

from qiskit.circuit import QuantumCircuit
from qiskit.providers import BackendV2, Options
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import Target


@dataclass
class Compacted:
    """A transpiled circuit renumbered onto its active physical qubits."""

    circuit: QuantumCircuit
    observables: list
    physical_qubits: list[int]


class _SubDevice(BackendV2):
    """A backend whose target is a slice of a real device's target (only to build the noise model)."""

    def __init__(self, name: str, target: Target) -> None:
        super().__init__(name=name, backend_version="1")
        self._target = target

    @property
    def target(self) -> Target:
        return self._target

    @property
    def max_circuits(self) -> None:
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options()

    def run(self, run_input, **options):
        raise NotImplementedError("Only used to derive a noise model.")


def active_qubits(circuit: QuantumCircuit) -> list[int]:
    """Physical qubits touched by a gate (barriers and delays alone do not count)."""
    used = {circuit.find_bit(q).index for ins in circuit.data
            if ins.operation.name not in ("barrier", "delay") for q in ins.qubits}
    return sorted(used)


def compact_circuit(circuit: QuantumCircuit, observables: list[SparsePauliOp]) -> Compacted:
    """Renumber ``circuit`` and its laid-out single-qubit ``observables`` onto the active qubits."""
    keep = active_qubits(circuit)
    index = {p: i for i, p in enumerate(keep)}
    out = QuantumCircuit(len(keep), name=circuit.name)
    for ins in circuit.data:
        if ins.operation.name in ("barrier", "delay"):
            continue
        out.append(ins.operation, [index[circuit.find_bit(q).index] for q in ins.qubits])
    small = []
    for op in observables:
        pairs = [(label, [index[q] for q in qubits], coeff) for label, qubits, coeff in op.to_sparse_list()]
        small.append(SparsePauliOp.from_sparse_list(pairs, num_qubits=len(keep)))
    return Compacted(out, small, keep)


def sub_target(target: Target, physical: list[int]) -> Target:
    """The device's target restricted to ``physical`` qubits, renumbered 0..k-1, calibration kept."""
    index = {p: i for i, p in enumerate(physical)}
    props = target.qubit_properties
    sub = Target(num_qubits=len(physical), dt=target.dt,
                 qubit_properties=[props[p] for p in physical] if props else None)
    for name in target.operation_names:
        op = target.operation_from_name(name)
        entries = target[name]
        if entries is None or None in entries:  # global or variadic (control flow, box): no calibration
            sub.add_instruction(op, name=name)
            continue
        kept = {tuple(index[q] for q in qargs): p for qargs, p in entries.items()
                if all(q in index for q in qargs)}
        if kept:
            sub.add_instruction(op, kept, name=name)
    return sub


def density_matrix_emulator(backend: BackendV2, physical: list[int]):
    """An Aer density-matrix simulator with ``backend``'s calibrated noise on ``physical`` qubits."""
    from qiskit_aer import AerSimulator

    device = _SubDevice(f"{backend.name}[{','.join(map(str, physical))}]", sub_target(backend.target, physical))
    return AerSimulator.from_backend(device, method="density_matrix")


def is_fake_backend(backend) -> bool:
    """True for the calibrated fake devices of ``qiskit_ibm_runtime.fake_provider``."""
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    return isinstance(backend, FakeBackendV2)
