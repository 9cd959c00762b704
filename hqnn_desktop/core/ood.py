"""Flag images unlike the training data: cosine distance of backbone features to class centroids.

A pack stores one centroid per class (mean training feature) and a threshold:
the 99th percentile, over its validation images, of the distance to the nearest
centroid. An image farther than that (a different stain, an empty field, a
photograph of something else) is flagged "unlike training data". About 1 % of
in-distribution images are flagged too, by construction.
"""

from __future__ import annotations

import numpy as np

PERCENTILE = 99.0


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def class_centroids(features: np.ndarray, targets: np.ndarray, n_classes: int) -> np.ndarray:
    """Unit-length mean direction of each class's features, (classes, D)."""
    f = _normalise(np.asarray(features, np.float64))
    t = np.asarray(targets)
    return _normalise(np.stack([f[t == k].mean(0) if (t == k).any() else np.zeros(f.shape[1])
                                for k in range(n_classes)])).astype(np.float32)


def distances(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Cosine distance of each feature vector to its nearest class centroid."""
    return 1.0 - (_normalise(np.asarray(features, np.float32)) @ centroids.T).max(axis=1)


def fit(train_features: np.ndarray, train_targets: np.ndarray, val_features: np.ndarray,
        n_classes: int) -> tuple[np.ndarray, float]:
    """Centroids from training features, threshold from validation features."""
    centroids = class_centroids(train_features, train_targets, n_classes)
    threshold = float(np.percentile(distances(val_features, centroids), PERCENTILE))
    return centroids, threshold
