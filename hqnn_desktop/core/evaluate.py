"""Score a pack on a labelled folder: the report of ``hqnn-desktop evaluate`` and the Evaluate tab."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .datasets import scan_class_folders
from .imageio import is_image_name
from .metrics import classification_report
from .predict import Engine


class EvaluationCancelled(Exception):
    """The evaluation was stopped before every image was scored; no report is made.

    The images are read class by class, so those scored before a cancel cover only the
    first classes, and figures made from them would give a misleading picture of the models.
    """

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"cancelled after {done} of {total} images")
        self.done, self.total = done, total


def evaluate_folder(pack, folder: str, models: tuple[str, ...], batch_size: int = 32,
                    progress=None, cancelled=lambda: False, keep_latents: bool = False,
                    precision: str = "auto", device: str | None = None, orientations: int | None = None) -> dict:
    """Score ``pack`` on a labelled folder; the report the CLI writes and the Evaluate tab shows.

    With ``keep_latents`` the report also holds, under ``latents`` (numpy arrays, not
    JSON), each usable image's bottleneck code and its embedding after every model's
    transformation, for the embedding plots. ``precision`` and ``device`` go to the
    :class:`~core.predict.Engine` (the bf16 check compares precisions this way), and so do
    ``orientations`` (None: the pack's choice; the report says how many were averaged). Raises
    :class:`EvaluationCancelled` when ``cancelled`` stops it before the last image.
    """
    files = scan_class_folders(folder, pack.labels)
    engine = Engine(pack, models, batch_size=batch_size, precision=precision, device=device,
                    orientations=orientations)
    truth = {str(p): t for p, t in zip(files.paths, files.targets)}
    kept, probas, errors = [], {m: [] for m in models}, []
    codes, embs = [], {m: [] for m in models}
    done = 0
    for done, result in enumerate(engine.classify([str(p) for p in files.paths], cancelled, keep_latents),
                                  start=1):
        if result.error:
            errors.append({"path": result.path, "error": result.error})
        else:
            kept.append(result.path)
            for m in models:
                probas[m].append(result.proba[m])
                if keep_latents:
                    embs[m].append(result.embeddings[m])
            if keep_latents:
                codes.append(result.codes[models[0]])
        if progress:
            progress(done, len(files))
    if done < len(files):
        raise EvaluationCancelled(done, len(files))
    y = np.array([truth[p] for p in kept], dtype=int)
    report = {"pack": pack.name, "folder": str(folder), "labels": pack.labels, "orientations": engine.orientations,
              "n_images": len(files), "n_unusable": len(errors), "n_unlabelled": unlabelled_images(folder),
              "errors": errors, "passed_over": [{"path": str(p), "reason": why} for p, why in files.skipped],
              "models": {}}
    for m in models:
        proba = np.stack(probas[m]) if probas[m] else np.zeros((0, len(pack.labels)))
        report["models"][m] = classification_report(y, proba, pack.labels)
    if keep_latents and kept:
        report["latents"] = {"paths": kept, "truth": y,
                             "pred": {m: np.stack(probas[m]).argmax(1) for m in models},
                             "code": np.stack(codes), "embedding": {m: np.stack(embs[m]) for m in models}}
    return report


def unlabelled_images(folder: str | Path) -> int:
    """Images lying next to the class folders: they have no label, so they are not scored; reports
    say how many, for a user who put them there by mistake."""
    return sum(1 for p in Path(folder).iterdir() if p.is_file() and is_image_name(p))


def unlabelled_note(report: dict) -> str:
    """The sentence about :func:`unlabelled_images` ('' when there are none)."""
    n = report.get("n_unlabelled", 0)
    if not n:
        return ""
    return (f"{n} image{'s' if n > 1 else ''} directly in {report['folder']} (outside the class folders) had "
            f"no label and {'were' if n > 1 else 'was'} not scored.")


def passed_over_note(report: dict) -> str:
    """The sentence about files in the class folders that were not scored ('' when none): names
    that are not pictures' (notes, spreadsheets) and folders that could not be opened."""
    passed = report.get("passed_over", [])
    if not passed:
        return ""
    n = len(passed)
    first = passed[0]
    return (f"{n} item{'s' if n > 1 else ''} in the class folders {'were' if n > 1 else 'was'} not scored "
            f"(for example {Path(first['path']).name}: {first['reason']}).")


def absent_classes_note(report: dict, shown_as: str = "") -> str:
    """The sentence about :func:`classes_without_images` ('' when every class, or none, had images);
    ``shown_as`` is how a display writes an undefined figure."""
    absent = classes_without_images(report)
    n_present = len(report["labels"]) - len(absent)
    if not absent or not n_present:
        return ""
    present = "the class" if n_present == 1 else f"the {n_present} classes"
    return (f"No image of {', '.join(absent)}: their recall and F1 are undefined"
            f"{f' (shown as {shown_as})' if shown_as else ''}. The macro figures average {present} with "
            "images, and count 0 for any of those classes a model put images in.")


def classes_without_images(report: dict) -> list[str]:
    """The pack's classes of which the evaluated folder had no usable image.

    Their recall and F1 are undefined; the macro figures of
    :func:`core.metrics.classification_report` count them only where a model put images in them
    (:func:`core.metrics.counted_classes`).
    """
    first = next(iter(report["models"].values()), None)
    return [lab for lab in report["labels"] if first and first["per_class"][lab]["support"] == 0]


def per_class_defined(model_report: dict, labels: list[str]) -> dict[str, dict[str, float | None]]:
    """Precision, recall and F1 per class, None where undefined: no image of the class
    (recall, F1) or no image put in it (precision). The report itself writes 0 there."""
    predicted = [sum(col) for col in zip(*model_report["confusion_matrix"])]
    out = {}
    for lab, n_predicted in zip(labels, predicted):
        row = model_report["per_class"][lab]
        has_images = row["support"] > 0
        out[lab] = {"precision": row["precision"] if n_predicted else None,
                    "recall": row["recall"] if has_images else None,
                    "f1": row["f1"] if has_images else None}
    return out
