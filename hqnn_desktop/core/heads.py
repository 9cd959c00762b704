"""The three heads compared by hqnn-desktop, all fed the same backbone features.

Each head is ``bottleneck -> transformation -> classifier``:

* bottleneck: ``tanh(Linear(D -> n))``, a bounded n-dimensional code (n = qubits);
* transformation: the VQC (HQNN), a classical nonlinear map with the same
  number of trainable parameters (Classical Matched), or nothing (Baseline);
* classifier: ``Linear(n -> classes)``.

The classical twin of one circuit layer (3 angles per qubit, a ring of
controlled rotations mixing neighbours) is one :class:`MatchedLayer`: 3 parameters per
dimension (a diagonal gain and a rank-one mixing ``u v^T`` across all
dimensions) followed by tanh, so its output is bounded like <Z>. ``L`` layers
give exactly ``3 n L`` parameters, the circuit's count, for every n and L.
"""

from __future__ import annotations

import torch
from torch import nn

from .circuits import QuantumLayer, circuit_parameter_count
from .kinds import MODEL_KINDS, MODEL_TITLES

__all__ = ["MODEL_KINDS", "MODEL_TITLES", "ClassicalMatched", "Head", "MatchedLayer", "parameter_counts"]



class MatchedLayer(nn.Module):
    """One classical layer: ``tanh(d * x + u (v . x))``, 3 n trainable parameters."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.d = nn.Parameter(torch.ones(n))
        self.u = nn.Parameter(torch.randn(n) / n**0.5)
        self.v = nn.Parameter(torch.randn(n) / n**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.d * x + (x @ self.v).unsqueeze(-1) * self.u)


class ClassicalMatched(nn.Sequential):
    """``layers`` MatchedLayers: the classical transformation with the circuit's parameter count."""

    def __init__(self, n: int, layers: int) -> None:
        super().__init__(*[MatchedLayer(n) for _ in range(layers)])


class Head(nn.Module):
    """bottleneck -> transformation -> classifier, for one of :data:`MODEL_KINDS`."""

    def __init__(self, kind: str, in_features: int, n_qubits: int, layers: int, n_classes: int):
        super().__init__()
        if kind not in MODEL_KINDS:
            raise ValueError(f"Unknown model '{kind}'. Choose from: {', '.join(MODEL_KINDS)}.")
        self.kind = kind
        self.bottleneck = nn.Linear(in_features, n_qubits)
        if kind == "hqnn":
            self.transform: nn.Module = QuantumLayer(n_qubits, layers)
        elif kind == "classical":
            self.transform = ClassicalMatched(n_qubits, layers)
        else:
            self.transform = nn.Identity()
        self.classifier = nn.Linear(n_qubits, n_classes)

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """Bounded bottleneck code in (-1, 1)."""
        return torch.tanh(self.bottleneck(features))

    def embed(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(bottleneck code, embedding after the transformation)."""
        code = self.encode(features)
        return code, self.transform(code)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(features)[1])

    def transform_parameter_count(self) -> int:
        return sum(p.numel() for p in self.transform.parameters())

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def parameter_counts(in_features: int, n_qubits: int, layers: int, n_classes: int) -> dict:
    """Trainable parameters per model: transformation stage and whole head."""
    counts = {}
    for kind in MODEL_KINDS:
        head = Head(kind, in_features, n_qubits, layers, n_classes)
        counts[kind] = {"transform": head.transform_parameter_count(), "head": head.parameter_count()}
    assert counts["hqnn"]["transform"] == circuit_parameter_count(n_qubits, layers)
    return counts
