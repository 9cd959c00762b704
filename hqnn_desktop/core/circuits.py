"""The variational quantum circuit (VQC) of the HQNN, as a torch module.

Shapes: the circuit takes a batch of bounded bottleneck vectors ``x`` of shape
(B, n) with entries in (-1, 1), encodes each entry as a Y rotation by
``pi/2 * (x + 1)`` (so the interval maps one-to-one onto the Bloch sphere's
meridian from |0> to |1>), applies ``L`` StronglyEntanglingLayers (3 trainable
angles per qubit and layer, CNOT ring entanglers), and returns <Z> of every
qubit: a (B, n) tensor in [-1, 1].

It runs on PennyLane's ``default.qubit`` with the torch interface and backprop,
with parameter broadcasting over the batch: one simulation for the whole batch,
never a Python loop over samples. The IBM hardware layer rebuilds the same gate
sequence in Qiskit from :func:`encoding_angles` and the trained weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def encoding_angles(x: torch.Tensor) -> torch.Tensor:
    """Map bounded bottleneck values in (-1, 1) to RY angles in (0, pi)."""
    return (x + 1.0) * (math.pi / 2.0)


def circuit_parameter_count(n_qubits: int, layers: int) -> int:
    """Trainable parameters of the VQC: three rotation angles per qubit and layer."""
    return 3 * n_qubits * layers


def weight_shape(n_qubits: int, layers: int) -> tuple[int, int, int]:
    """Shape of the StronglyEntanglingLayers weights."""
    return (layers, n_qubits, 3)


def make_qnode(n_qubits: int, device_name: str = "default.qubit"):
    """Build the PennyLane QNode ``f(angles (B, n), weights (L, n, 3)) -> tuple of n (B,) tensors``."""
    import pennylane as qml

    dev = qml.device(device_name, wires=n_qubits)

    @qml.qnode(dev, interface="torch", diff_method="backprop")
    def circuit(angles: torch.Tensor, weights: torch.Tensor):
        qml.AngleEmbedding(angles, wires=range(n_qubits), rotation="Y")
        qml.StronglyEntanglingLayers(weights, wires=range(n_qubits))
        return [qml.expval(qml.PauliZ(w)) for w in range(n_qubits)]

    return circuit


class QuantumLayer(nn.Module):
    """The VQC as a layer: (B, n) bounded inputs -> (B, n) Pauli-Z expectations."""

    def __init__(self, n_qubits: int, layers: int) -> None:
        super().__init__()
        if n_qubits < 1 or layers < 1:
            raise ValueError("The circuit needs at least one qubit and one layer.")
        self.n_qubits = n_qubits
        self.layers = layers
        # Zero rotations: the circuit starts as its CNOT entanglers alone, which map the
        # corners of the bounded code one-to-one (no information lost at initialisation);
        # random angles in [0, 2pi) trained far less reliably on frozen codes.
        self.weights = nn.Parameter(torch.zeros(weight_shape(n_qubits, layers)))
        self._qnode = None

    def _circuit(self):
        if self._qnode is None:
            self._qnode = make_qnode(self.n_qubits)
        return self._qnode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = encoding_angles(x.double())
        out = self._circuit()(angles, self.weights.double())
        z = torch.stack(list(out), dim=-1)
        if z.dim() == 1:
            z = z.unsqueeze(0)
        return z.to(x.dtype)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_qnode"] = None
        return state
