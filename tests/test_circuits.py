import math

import pytest
import torch

from hqnn_desktop.core.circuits import QuantumLayer, circuit_parameter_count, encoding_angles
from hqnn_desktop.core.heads import MODEL_KINDS, Head, parameter_counts


def test_circuit_output_shape_range_and_gradients():
    torch.manual_seed(0)
    layer = QuantumLayer(4, 2)
    x = (torch.rand(5, 4) * 2 - 1).requires_grad_(True)
    z = layer(x)
    assert z.shape == (5, 4)
    assert torch.all(z.abs() <= 1 + 1e-6)
    z.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert layer.weights.grad.shape == (2, 4, 3) and layer.weights.grad.abs().sum() > 0


def test_broadcast_batch_equals_one_by_one():
    torch.manual_seed(1)
    layer = QuantumLayer(3, 2)
    x = torch.rand(6, 3) * 2 - 1
    batched = layer(x)
    single = torch.cat([layer(x[i:i + 1]) for i in range(6)])
    assert torch.allclose(batched, single, atol=1e-6)


@pytest.mark.parametrize("n, layers", [(1, 1), (3, 2), (8, 1)])
def test_classification_path_matches_pennylane_and_follows_weight_updates(n, layers):
    # without gradients the layer evaluates the circuit from its cached unitary
    torch.manual_seed(n)
    layer = QuantumLayer(n, layers)
    x = torch.rand(7, n) * 2 - 1
    for _ in range(2):
        with torch.no_grad():
            layer.weights.normal_(0.0, 1.0)  # an in-place update must invalidate the cache
            fast = layer(x)
        assert torch.allclose(fast, layer(x).detach(), atol=1e-6)


def test_untrained_circuit_is_the_identity_on_the_code():
    # all angles zero: <Z_i> = cos(encoding angle), a one-to-one map of the bottleneck code
    layer = QuantumLayer(3, 2)
    x = torch.tensor([[-1.0, 0.0, 0.5], [0.9, -0.3, 0.0]])
    assert torch.allclose(layer(x), torch.cos(encoding_angles(x)), atol=1e-6)


def test_trained_angles_entangle():
    layer = QuantumLayer(2, 1)
    with torch.no_grad():
        layer.weights[0, 0, 2] = math.pi  # CRX(pi) from qubit 0 to qubit 1: a CNOT up to phase
    z = layer(torch.tensor([[1.0, -1.0]]))  # encodes |1>|0>
    assert torch.allclose(z, torch.tensor([[-1.0, -1.0]]), atol=1e-6)
    assert torch.allclose(encoding_angles(torch.tensor([-1.0, 0.0, 1.0])),
                          torch.tensor([0.0, math.pi / 2, math.pi]))


@pytest.mark.parametrize("n", [2, 4, 6, 8])
@pytest.mark.parametrize("layers", [1, 2, 3, 4])
def test_classical_matched_has_the_circuit_parameter_count(n, layers):
    counts = parameter_counts(1280, n, layers, 8)
    q = counts["hqnn"]["transform"]
    assert q == circuit_parameter_count(n, layers) == 3 * n * layers
    assert abs(counts["classical"]["transform"] - q) <= 0.1 * q
    assert counts["baseline"]["transform"] == 0
    assert counts["hqnn"]["head"] - counts["baseline"]["head"] == q


def test_heads_forward_and_backward():
    feats = torch.randn(7, 32)
    for kind in MODEL_KINDS:
        head = Head(kind, 32, 4, 2, 5)
        code, emb = head.embed(feats)
        assert code.shape == (7, 4) and emb.shape == (7, 4)
        assert torch.all(code.abs() < 1)
        logits = head(feats)
        assert logits.shape == (7, 5)
        logits.sum().backward()
        assert head.bottleneck.weight.grad.abs().sum() > 0


def test_unknown_model_kind_is_explained():
    with pytest.raises(ValueError, match="Choose from"):
        Head("quantum-ish", 8, 2, 1, 3)
