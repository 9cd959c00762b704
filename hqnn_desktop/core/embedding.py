"""2-D projections of latent spaces for the embedding plots: PCA by default, t-SNE on request."""

from __future__ import annotations

import numpy as np


def project(x: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, d) -> (N, 2). PCA is exact and fast; t-SNE (scikit-learn) shows local clusters."""
    x = np.asarray(x, np.float64)
    if len(x) < 3:
        return np.pad(x[:, :2], ((0, 0), (0, max(0, 2 - x.shape[1]))))
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"Unknown projection '{method}': use 'pca' or 'tsne'.")
