"""Macro figures of evaluation reports: the usual (scikit-learn) averaging, also on folders that
lack some of a pack's classes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from hqnn_desktop.core.metrics import classification_report, macro_f1


@pytest.mark.parametrize("seed", range(5))
def test_macro_figures_agree_with_scikit_learn_when_classes_are_missing(seed):
    rng = np.random.default_rng(seed)
    labels = [f"class{k}" for k in range(6)]
    y_true = rng.choice([0, 2, 3], 40)  # a folder with three of the six classes
    proba = rng.dirichlet(np.ones(6), 40)
    proba[np.arange(40), y_true] += rng.random(40)  # mostly right, some images put into absent classes
    report = classification_report(y_true, proba, labels)
    expected = precision_recall_fscore_support(y_true, proba.argmax(1), average="macro", zero_division=0)
    assert [report[f"macro_{k}"] for k in ("precision", "recall", "f1")] == pytest.approx(expected[:3])
    assert macro_f1(y_true, proba.argmax(1), 6) == pytest.approx(expected[2])


def test_an_error_into_an_absent_class_is_not_a_perfect_precision():
    labels = ["eosinophil", "lymphocyte", "monocyte", "neutrophil"]
    proba = np.eye(4)[[3, 0, 1, 1]]  # an eosinophil called a neutrophil, of which there are none here
    report = classification_report(np.array([0, 0, 1, 1]), proba, labels)
    assert report["accuracy"] == 0.75
    assert report["macro_precision"] == pytest.approx(2 / 3) and report["macro_f1"] == pytest.approx((2 / 3 + 1) / 3)
