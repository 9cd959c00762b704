"""The quantum layer on a real qiskit fake backend (local testing mode, calibrated noise)."""

import math

import numpy as np
import torch
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from hqnn_desktop.core.circuits import QuantumLayer
from hqnn_desktop.hardware.runner import run_quantum_layer


def test_fake_backend_agrees_with_simulation_in_batched_jobs():
    rng = np.random.default_rng(0)
    layer = QuantumLayer(3, 1)
    with torch.no_grad():
        layer.weights.copy_(torch.tensor(rng.uniform(-1, 1, (1, 3, 3))))
    codes = rng.uniform(-0.9, 0.9, (10, 3))
    simulated = layer(torch.tensor(codes)).detach().numpy()
    seen = []
    measured, jobs = run_quantum_layer(codes, layer.weights.detach().numpy(), FakeManilaV2(), shots=4000,
                                       batch_size=4, on_job=lambda jid, k, n: seen.append((k, n)))
    assert measured.shape == (10, 3)
    assert len(jobs) == math.ceil(10 / 4) == len(seen) and seen[-1] == (3, 3)
    assert np.abs(measured - simulated).mean() < 0.1  # shot noise + the device's calibrated noise
    assert np.corrcoef(measured.ravel(), simulated.ravel())[0, 1] > 0.9
