"""The PennyLane circuit and its Qiskit twin agree exactly (statevector)."""

import numpy as np
import pytest
import torch
from qiskit.quantum_info import Statevector

from hqnn_desktop.core.circuits import QuantumLayer, encoding_angles, qiskit_circuit


@pytest.mark.parametrize("n,layers", [(1, 1), (3, 2), (4, 1), (5, 3)])
def test_pennylane_and_qiskit_give_the_same_expectations(n, layers):
    rng = np.random.default_rng(n * 10 + layers)
    layer = QuantumLayer(n, layers)
    with torch.no_grad():
        layer.weights.copy_(torch.tensor(rng.uniform(-np.pi, np.pi, (layers, n, 3))))
    codes = torch.tensor(rng.uniform(-1, 1, (4, n)))
    expected = layer(codes).detach().double().numpy()
    qc, x, w, observables = qiskit_circuit(n, layers)
    weights = layer.weights.detach().double().numpy().reshape(-1)
    for b in range(len(codes)):
        angles = encoding_angles(codes[b]).numpy()
        bound = qc.assign_parameters({**dict(zip(x, angles)), **dict(zip(w, weights))}, strict=False)
        state = Statevector(bound)
        got = np.array([state.expectation_value(o).real for o in observables])
        np.testing.assert_allclose(got, expected[b], atol=1e-6)
