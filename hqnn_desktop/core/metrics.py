"""Classification metrics used in reports, the Evaluate tab and the training records."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def per_class_prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per class from a confusion matrix (0 where undefined)."""
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(0).astype(float)
    actual = cm.sum(1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


def counted_classes(cm: np.ndarray) -> np.ndarray:
    """The classes macro figures average: those with images and those images were put in (as
    scikit-learn does). A folder without some class still gets a fair average, and a model that
    puts images into a class absent from the folder pays for it (precision 0 there) instead of
    showing a perfect macro precision."""
    return (cm.sum(1) > 0) | (cm.sum(0) > 0)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro-averaged F1 over :func:`counted_classes`."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    counted = counted_classes(cm)
    return float(per_class_prf(cm)[2][counted].mean()) if counted.any() else 0.0


def expected_calibration_error(proba: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al. 2017): the images' average gap between
    confidence and the share correct in their bin."""
    curve = reliability_curve(proba, y_true, bins)
    n = max(1, sum(curve["count"]))
    return float(sum(k / n * abs(a - c) for k, a, c in zip(curve["count"], curve["accuracy"], curve["confidence"])
                     if k))


def reliability_curve(proba: np.ndarray, y_true: np.ndarray, bins: int = 15) -> dict:
    """Per-bin mean confidence, accuracy and count, for reliability plots."""
    conf = proba.max(1)
    correct = proba.argmax(1) == np.asarray(y_true)
    rows = {"confidence": [], "accuracy": [], "count": []}
    for lo, hi in pairwise(np.linspace(0.0, 1.0, bins + 1)):
        mask = (conf > lo) & (conf <= hi)
        rows["count"].append(int(mask.sum()))
        rows["confidence"].append(float(conf[mask].mean()) if mask.any() else None)
        rows["accuracy"].append(float(correct[mask].mean()) if mask.any() else None)
    return rows


def classification_report(y_true: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict:
    """Everything a report shows for one model: n, accuracy, macro P/R/F1, per class, matrix, ECE."""
    y_true = np.asarray(y_true, int)
    pred = proba.argmax(1)
    cm = confusion_matrix(y_true, pred, len(labels))
    precision, recall, f1 = per_class_prf(cm)
    counted = counted_classes(cm)
    return {
        "n": len(y_true),
        "accuracy": float((pred == y_true).mean()) if len(y_true) else 0.0,
        "macro_precision": float(precision[counted].mean()) if counted.any() else 0.0,
        "macro_recall": float(recall[counted].mean()) if counted.any() else 0.0,
        "macro_f1": float(f1[counted].mean()) if counted.any() else 0.0,
        "per_class": {lab: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for lab, p, r, f, s in zip(labels, precision, recall, f1, cm.sum(1))},
        "confusion_matrix": cm.tolist(),
        "ece": expected_calibration_error(proba, y_true) if len(y_true) else 0.0,
        "reliability": reliability_curve(proba, y_true) if len(y_true) else None,
    }


def mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    """Exact (binomial) McNemar test on paired predictions of two models on the same images."""
    from scipy.stats import binomtest

    a_ok = np.asarray(pred_a) == np.asarray(y_true)
    b_ok = np.asarray(pred_b) == np.asarray(y_true)
    only_a = int((a_ok & ~b_ok).sum())
    only_b = int((~a_ok & b_ok).sum())
    n = only_a + only_b
    p = 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": p}


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof=1) of per-seed figures."""
    arr = np.asarray(values, float)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else math.nan
    return {"mean": float(arr.mean()), "std": std, "values": [float(v) for v in arr]}


def cohen_kappa(y_a: np.ndarray, y_b: np.ndarray, n_classes: int) -> float | None:
    """Cohen's kappa between two labelings of the same items (None when there are none).

    Agreement corrected for chance: (p_o - p_e) / (1 - p_e). When chance agreement
    is already complete (everything in one class on both sides) kappa is 1.
    """
    cm = confusion_matrix(y_a, y_b, n_classes).astype(float)
    n = cm.sum()
    if n == 0:
        return None
    observed = np.trace(cm) / n
    expected = float((cm.sum(0) * cm.sum(1)).sum()) / n**2
    return 1.0 if expected >= 1.0 else float((observed - expected) / (1.0 - expected))
