"""Flag images unlike the training data, from the distance of their backbone features to the
nearest class.

Packs store, from their training features, a model of them: their leading principal directions,
the within-class covariance there (shrunk towards a multiple of the identity, Ledoit-Wolf, so that
small user datasets work too), each class's mean, and the typical spread in the remaining
directions. The distance of an image is its Mahalanobis distance to the nearest class mean under
that covariance (Lee et al., NeurIPS 2018; the remaining directions as in probabilistic PCA). The
threshold is the 99th percentile of the distances of the pack's validation images, so about 1 % of
images like the training data are flagged too, by construction.

The Mahalanobis distance misses what the cosine distance to class centroids catches, and the
other way round: a flat green picture has tiny backbone features, near no class in direction but
not far in Mahalanobis terms; a PBC cell shown to bci4 points like a bci4 cell but lies far from
them. Packs therefore keep both, each scaled by its own 99th percentile on validation images, and
an image's distance is the larger of the two. With the bundled packs this flags 69 % of PBC images
shown to bci4 and 97 % of Blood Cell Images shown to pbc8, against 13 % and 56 % for the cosine
distance alone; the price is more flags on new smears of a pack's own dataset (bci4 TEST_SIMPLE:
6 of 71 images, against 1 of 71). ``training/compare_ood.py``, record in
``training/results/ood_methods.json``. Packs made before keep the cosine distance alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERCENTILE = 99.0
#: Principal directions modelled in full (of EfficientNet-Lite0's 1,280 features): 256 told foreign
#: images apart as well as 512 (training/results/ood_methods.json) at half the size in a pack.
MAX_DIRECTIONS = 256
COSINE = "cosine"
MAHALANOBIS = "mahalanobis"
BOTH = "mahalanobis+cosine"
_COSINE_TEXT = "cosine distance of backbone features to the nearest class centroid"
_MAHALANOBIS_TEXT = ("Mahalanobis distance of backbone features to the nearest class mean (within-class "
                     "covariance on the leading principal directions, probabilistic PCA beyond)")
_THRESHOLD_TEXT = "; threshold = 99th percentile on validation images"
METHOD_TEXT = {
    COSINE: _COSINE_TEXT + _THRESHOLD_TEXT,
    MAHALANOBIS: _MAHALANOBIS_TEXT + _THRESHOLD_TEXT,
    BOTH: f"the larger of the {_MAHALANOBIS_TEXT} and the {_COSINE_TEXT}, each divided by its 99th "
          "percentile on validation images" + _THRESHOLD_TEXT,
}
_CENTROIDS = ("centroids",)
_WHITENING = ("mean", "basis", "root", "class_means", "residual_scale")
NEEDED = {COSINE: _CENTROIDS, MAHALANOBIS: _WHITENING, BOTH: (*_WHITENING, *_CENTROIDS, "scales")}


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _f16(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rounded as the pack stores them (16-bit), so thresholds fit the stored model exactly."""
    return {name: np.asarray(t).astype(np.float16).astype(np.float32) for name, t in tensors.items()}


@dataclass(frozen=True)
class OodModel:
    """What a pack keeps to tell whether an image looks like its training images.

    ``tensors`` are stored in the pack's heads file under ``ood.<name>`` (``NEEDED[method]``).
    """

    method: str
    tensors: dict[str, np.ndarray]
    threshold: float

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Distance of each feature vector to the nearest class (larger = less like the training data)."""
        f = np.asarray(features, np.float32)
        if self.method == COSINE:
            return self._cosine(f)
        if self.method == MAHALANOBIS:
            return self._mahalanobis(f)
        scales = self.tensors["scales"]
        return np.maximum(self._mahalanobis(f) / scales[0], self._cosine(f) / scales[1])

    def _cosine(self, f: np.ndarray) -> np.ndarray:
        return 1.0 - (_normalise(f) @ self.tensors["centroids"].T).max(axis=1)

    def _mahalanobis(self, f: np.ndarray) -> np.ndarray:
        centred = f - self.tensors["mean"]
        inside = centred @ self.tensors["basis"]
        z = inside @ self.tensors["root"]
        means = self.tensors["class_means"]
        squared = (z * z).sum(1, keepdims=True) - 2 * z @ means.T + (means * means).sum(1)
        outside = (centred * centred).sum(1) - (inside * inside).sum(1)
        total = squared.min(axis=1) + np.maximum(outside, 0.0) / self.tensors["residual_scale"][0]
        return np.sqrt(np.maximum(total, 0.0))

    def flags(self, features: np.ndarray) -> np.ndarray:
        return self.distances(features) > self.threshold

    def card_entry(self) -> dict:
        return {"threshold": self.threshold, "method": METHOD_TEXT[self.method], "kind": self.method}

    @classmethod
    def from_pack(cls, entry: dict, tensors: dict[str, np.ndarray]) -> OodModel | None:
        """The model a pack's card entry and ``ood.*`` tensors describe; None when incomplete."""
        method = entry.get("kind", COSINE)
        threshold = entry.get("threshold")
        if method not in NEEDED or threshold is None or any(k not in tensors for k in NEEDED[method]):
            return None
        model = cls(method, {k: np.asarray(tensors[k], np.float32) for k in NEEDED[method]}, float(threshold))
        scales = [model.tensors[k] for k in ("residual_scale", "scales") if k in model.tensors]
        if not np.isfinite(model.threshold) or any(not (np.isfinite(x).all() and (x > 0).all()) for x in scales):
            return None  # fitted by an earlier version on too few images: it could never flag anything
        return model


def class_centroids(features: np.ndarray, targets: np.ndarray, n_classes: int) -> np.ndarray:
    """Unit-length mean direction of each class's features, (classes, D)."""
    f = _normalise(np.asarray(features, np.float64))
    t = np.asarray(targets)
    return _normalise(np.stack([f[t == k].mean(0) if (t == k).any() else np.zeros(f.shape[1])
                                for k in range(n_classes)])).astype(np.float32)


def whitening(train_features: np.ndarray, train_targets: np.ndarray,
              max_directions: int = MAX_DIRECTIONS) -> dict[str, np.ndarray]:
    """The Mahalanobis model's tensors, from training features.

    ``basis``: the leading principal directions (D, k); ``root``: a square root of the inverse
    within-class covariance there (k, k); ``class_means`` in the whitened space; ``mean`` of all
    features; ``residual_scale``: the typical squared distance per remaining direction. The
    remaining directions count too (a probabilistic-PCA covariance): a flat green picture lies
    far from every cell mostly in directions no cell varies in.
    """
    from sklearn.covariance import LedoitWolf

    f = np.asarray(train_features, np.float64)
    t = np.asarray(train_targets)
    classes = np.unique(t)
    mean = f.mean(0)
    centred = f - mean
    k = int(max(1, min(max_directions, f.shape[1] - 1, len(f) - len(classes))))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[:k].T
    projected = centred @ basis
    class_means = np.stack([projected[t == c].mean(0) for c in classes])
    residuals = projected - class_means[np.searchsorted(classes, t)]
    # A small training set (one image per class, say) can have no spread within its classes, and
    # spans its own features almost exactly, leaving next to nothing outside the leading directions:
    # variances are kept to at least a thousandth of the average spread per feature (and
    # representable in 16 bits), or the covariance could not be inverted and every image would lie
    # infinitely far from the training data.
    floor = max(1e-3 * float((centred * centred).sum(1).mean()) / f.shape[1], float(np.finfo(np.float16).tiny))
    covariance = np.nan_to_num(LedoitWolf(assume_centered=True).fit(residuals).covariance_) + floor * np.eye(k)
    precision = np.linalg.inv(covariance)
    root = np.linalg.cholesky((precision + precision.T) / 2)  # z @ root: unit within-class covariance
    outside = (centred * centred).sum(1) - (projected * projected).sum(1)
    residual_scale = max(float(outside.mean()) / (f.shape[1] - k), floor)
    return _f16({"mean": mean, "basis": basis, "root": root, "class_means": class_means @ root,
                 "residual_scale": np.array([residual_scale])})


def fit(train_features: np.ndarray, train_targets: np.ndarray, val_features: np.ndarray,
        method: str = BOTH, max_directions: int = MAX_DIRECTIONS) -> OodModel:
    """The model from training features, its threshold (and scales) from validation features."""
    tensors: dict[str, np.ndarray] = {}
    if method in (COSINE, BOTH):
        n_classes = int(np.max(train_targets)) + 1
        tensors["centroids"] = class_centroids(train_features, train_targets, n_classes)
    if method in (MAHALANOBIS, BOTH):
        tensors.update(whitening(train_features, train_targets, max_directions))
    if method == BOTH:
        parts = OodModel(BOTH, tensors, 0.0)
        f = np.asarray(val_features, np.float32)
        tensors["scales"] = _f16({"s": np.array([np.percentile(parts._mahalanobis(f), PERCENTILE),
                                                 np.percentile(parts._cosine(f), PERCENTILE)])})["s"]
    threshold = float(np.percentile(OodModel(method, tensors, 0.0).distances(val_features), PERCENTILE))
    return OodModel(method, tensors, threshold)
