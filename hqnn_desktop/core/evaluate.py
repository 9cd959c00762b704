"""Score a pack on a labelled folder: the report of ``hqnn-desktop evaluate`` and the Evaluate tab."""

from __future__ import annotations

import numpy as np

from .datasets import scan_class_folders
from .metrics import classification_report
from .predict import Engine


def evaluate_folder(pack, folder: str, models: tuple[str, ...], batch_size: int = 32,
                    progress=None, cancelled=lambda: False, keep_latents: bool = False,
                    precision: str = "auto", device: str | None = None) -> dict:
    """Score ``pack`` on a labelled folder; the report the CLI writes and the Evaluate tab shows.

    With ``keep_latents`` the report also holds, under ``latents`` (numpy arrays, not
    JSON), each usable image's bottleneck code and its embedding after every model's
    transformation, for the embedding plots. ``precision`` and ``device`` go to the
    :class:`~core.predict.Engine` (the bf16 check compares precisions this way).
    """
    files = scan_class_folders(folder, pack.labels)
    engine = Engine(pack, models, batch_size=batch_size, precision=precision, device=device)
    truth = {str(p): t for p, t in zip(files.paths, files.targets)}
    kept, probas, errors = [], {m: [] for m in models}, []
    codes, embs = [], {m: [] for m in models}
    for i, result in enumerate(engine.classify([str(p) for p in files.paths], cancelled, keep_latents),
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
            progress(i, len(files))
    y = np.array([truth[p] for p in kept], dtype=int)
    report = {"pack": pack.name, "folder": str(folder), "labels": pack.labels,
              "n_images": len(files), "n_unusable": len(errors), "errors": errors, "models": {}}
    for m in models:
        proba = np.stack(probas[m]) if probas[m] else np.zeros((0, len(pack.labels)))
        report["models"][m] = classification_report(y, proba, pack.labels)
    if keep_latents and kept:
        report["latents"] = {"paths": kept, "truth": y,
                             "pred": {m: np.stack(probas[m]).argmax(1) for m in models},
                             "code": np.stack(codes), "embedding": {m: np.stack(embs[m]) for m in models}}
    return report
