"""Temperature scaling: make a model's confidence mean what it says.

The heads are trained with label smoothing, which makes them under-confident: a
top probability of about 0.9 on images that are right 99 % of the time. The app
shows these numbers to biologists and flags images under a confidence
threshold, so they should match how often the model is right. Temperature
scaling (Guo et al. 2017) divides a model's logits by one scalar T > 0 before
the softmax: T < 1 sharpens, T > 1 softens. T is fitted per model by minimising
the negative log-likelihood on the pack's validation images (never on test
data). Dividing every logit by the same positive number keeps their order, so
the predicted class never changes; only the confidence does.

A pack stores T as ``card["models"][kind]["temperature"]`` and the fit as
``card["calibration"]``; a card without a temperature means T = 1, so older
packs and user packs behave exactly as before. Where the validation images
cannot calibrate any model (all of one class) the record says why under
``skipped``; where only some model cannot (it got every image right), that
model's own entry says why under ``skipped`` and the others are fitted.
"""

from __future__ import annotations

import datetime as _dt
import math

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from .heads import Head
from .metrics import expected_calibration_error
from .packs import Pack, PackError

DEFAULT_TEMPERATURE = 1.0
#: Search interval of T; wider than any sensible fit, narrow enough to stay finite.
T_BOUNDS = (0.05, 20.0)
METHOD = ("temperature scaling (Guo et al. 2017): probabilities = softmax(logits / T), one T per model, "
          "T minimising the negative log-likelihood on validation logits (bounded search over log T)")


class CalibrationError(ValueError):
    """Logits and labels from which no temperature can be fitted, with the reason."""


def _check_targets(targets: np.ndarray) -> None:
    """Refuse labels that cannot calibrate any model, whatever its logits: the reasons that
    are the same for every model of a pack."""
    if len(targets) == 0:
        raise CalibrationError("No validation images to calibrate on.")
    if len(np.unique(targets)) < 2:
        raise CalibrationError("The validation images are all of one class; a temperature fitted on them "
                               "would say nothing about the others.")


def _checked(logits: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets)
    if z.ndim != 2 or y.ndim != 1 or len(z) != len(y):
        raise CalibrationError(f"Expected logits (N, C) and N labels; got {z.shape} and {y.shape}.")
    if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= z.shape[1]):
        raise CalibrationError(f"Labels must be class indices in 0..{z.shape[1] - 1}.")
    _check_targets(y)
    if not np.isfinite(z).all():
        raise CalibrationError("The logits hold values that are not finite.")
    return z, y.astype(np.int64)


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float = DEFAULT_TEMPERATURE) -> float:
    """Mean negative log-likelihood of the true classes under softmax(logits / T)."""
    z, y = _checked(logits, targets)
    return float(-log_softmax(z / temperature, axis=1)[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The T in :data:`T_BOUNDS` minimising the NLL of softmax(logits / T) on labelled logits.

    The NLL is convex in 1/T, hence unimodal in log T, so a bounded Brent search
    over log T finds the minimum deterministically (no random start, no learning
    rate); searching log T treats sharpening and softening alike. Where every
    image is classified correctly the NLL keeps falling as T shrinks, so the
    "fit" would only be the lower bound (near-certain probabilities learnt from
    a set with no mistake in it): such a set is refused.
    """
    z, y = _checked(logits, targets)
    rows = np.arange(len(y))
    others = z.copy()
    others[rows, y] = -np.inf
    if (z[rows, y] > others.max(1)).all():
        raise CalibrationError("Every validation image is classified correctly, so no temperature can be "
                               "fitted (the likelihood keeps rising as confidence grows); use more images.")

    lo, hi = (math.log(b) for b in T_BOUNDS)
    best = minimize_scalar(lambda log_t: nll(z, y, math.exp(log_t)), bounds=(lo, hi), method="bounded",
                           options={"xatol": 1e-6})
    return float(math.exp(best.x))


def calibrated_proba(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) of a logit matrix, as float32 probabilities."""
    return np.exp(log_softmax(np.asarray(logits, np.float64) / temperature, axis=1)).astype(np.float32)


def calibrated_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T) along the class axis: what the engine and the hardware rerun report."""
    return torch.softmax(logits / temperature, dim=1)


def temperature_of(card: dict, kind: str) -> float:
    """The temperature a card gives ``kind``; 1.0 (no change) for cards from before calibration."""
    value = card.get("models", {}).get(kind, {}).get("temperature", DEFAULT_TEMPERATURE)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise PackError(f"The pack {card.get('name', '')} gives the {kind} model an invalid temperature "
                        f"({value!r}); it must be a positive number.")
    return float(value)


@torch.no_grad()
def head_logits(head: Head, features: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Logits (N, C) float32 of ``head`` for a backbone feature matrix."""
    head.eval()
    x = torch.as_tensor(features, dtype=torch.float32)
    out = [head(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, head.classifier.out_features), np.float32)


def engine_logits(pack: Pack, paths: list[str], models: tuple[str, ...], precision: str = "fp32",
                  device: str | None = None) -> tuple[list[int], dict[str, np.ndarray], list[dict]]:
    """Logits of every model for image files, through the classification engine.

    Returns the indices of the usable paths, logits per model for those, and the
    unusable files with their reason. Logits are the classifier applied to the
    embeddings the engine keeps, so they are exactly what its probabilities come from.
    """
    from .predict import Engine

    engine = Engine(pack, models, precision=precision, device=device, orientations=1)  # one logit per picture
    kept, embeddings, errors = [], {m: [] for m in models}, []
    for i, result in enumerate(engine.classify(paths, keep_latents=True)):
        if result.error:
            errors.append({"path": result.path, "error": result.error})
            continue
        kept.append(i)
        for m in models:
            embeddings[m].append(result.embeddings[m])
    logits = {}
    with torch.no_grad():
        for m in models:
            classifier = pack.heads[m].classifier
            emb = np.stack(embeddings[m]) if kept else np.zeros((0, classifier.in_features), np.float32)
            x = torch.as_tensor(emb, dtype=torch.float32, device=classifier.weight.device)
            logits[m] = classifier(x).cpu().numpy()
    return kept, logits, errors


def calibrate(logits: dict[str, np.ndarray], targets: np.ndarray, data: dict) -> dict:
    """Fit T for every model and describe the fit: the ``card["calibration"]`` record.

    ``data`` says what the logits were computed on (folder, split, ...); the
    number of images is added. ECE and NLL are given before (T = 1) and after.
    """
    return _record(data, len(targets), {kind: _fit(z, targets) for kind, z in logits.items()})


def _fit(logits: np.ndarray, targets: np.ndarray) -> dict:
    """One model's entry in a calibration record: T, and ECE and NLL before (T = 1) and after."""
    t = fit_temperature(logits, targets)
    return {"temperature": t,
            "ece_before": expected_calibration_error(calibrated_proba(logits, 1.0), targets),
            "ece_after": expected_calibration_error(calibrated_proba(logits, t), targets),
            "nll_before": nll(logits, targets), "nll_after": nll(logits, targets, t)}


def _fit_or_keep(logits: np.ndarray, targets: np.ndarray, kept: float) -> dict:
    """:func:`_fit`, or where this model cannot be calibrated (it got every image right) an entry
    keeping temperature ``kept`` with the reason under ``skipped``."""
    try:
        return _fit(logits, targets)
    except CalibrationError as exc:
        return {"temperature": kept, "skipped": str(exc)}


def calibrate_or_skip(logits: dict[str, np.ndarray], targets: np.ndarray, data: dict,
                      fallback: dict[str, float] | None = None) -> dict:
    """:func:`calibrate` for a pack being made, model by model: one model that cannot be
    calibrated must not cost the others theirs. A model that cannot keeps its ``fallback``
    temperature (default 1) with its own reason; where the validation images cannot calibrate
    any model (none, or all of one class) the record says so once, under ``skipped``. Either
    way a training run is not lost for want of a temperature."""
    kept = {kind: (fallback or {}).get(kind, DEFAULT_TEMPERATURE) for kind in logits}
    try:
        _check_targets(np.asarray(targets))
    except CalibrationError as exc:
        return _record(data, len(targets), {kind: {"temperature": t} for kind, t in kept.items()},
                       skipped=str(exc))
    return _record(data, len(targets), {kind: _fit_or_keep(z, targets, kept[kind]) for kind, z in logits.items()})


def _record(data: dict, n_images: int, models: dict, **extra: str) -> dict:
    """A ``card["calibration"]`` record: method, data with its size, date, the per-model fits."""
    return {"method": METHOD, "data": {**data, "n_images": n_images}, "date": _dt.date.today().isoformat(),
            **extra, "models": models}


def record_calibration(card: dict, record: dict) -> dict:
    """Write a :func:`calibrate` record into ``card`` (in place): each model's temperature and the record."""
    for kind, fit in record["models"].items():
        card["models"][kind]["temperature"] = fit["temperature"]
    card["calibration"] = record
    return card


__all__ = ["DEFAULT_TEMPERATURE", "METHOD", "T_BOUNDS", "CalibrationError", "calibrate", "calibrate_or_skip",
           "calibrated_proba", "calibrated_softmax", "engine_logits", "fit_temperature", "head_logits", "nll",
           "record_calibration", "temperature_of"]
