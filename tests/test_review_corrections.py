"""Corrections feed training: a deliberately confused class is fixed by fine-tuning on verified cells."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hqnn_desktop.core.build import AdaptConfig, HeadConfig, PackRecipe, train_pack
from hqnn_desktop.core.corrections import write_manifest
from hqnn_desktop.core.datasets import read_manifest, scan_class_folders
from hqnn_desktop.core.finetune import FineTuneRecipe, fine_tune_pack
from hqnn_desktop.core.packs import load_pack, sha256_file
from hqnn_desktop.core.predict import Engine
from hqnn_desktop.core.review import Review

from .conftest import make_dataset

MODELS = ("hqnn", "baseline")


@pytest.fixture(scope="module")
def confused_pack(tiny_dataset, tmp_path_factory):
    """A pack that mostly calls gamma 'beta': 18 of its 24 gamma training images were filed under beta."""
    base = tmp_path_factory.mktemp("confused")
    train = make_dataset(base / "train", 24, 0)
    for p in sorted((train / "gamma").glob("*.png"))[:18]:
        shutil.move(p, train / "beta" / p.name)
    recipe = PackRecipe(train_dir=str(train), val_dir=str(tiny_dataset[1]), name="confused", models=MODELS,
                        adapt=AdaptConfig(input_size=64, epochs=1, batch_size=16),
                        heads=HeadConfig(n_qubits=4, layers=1, epochs=8, warmup_epochs=5, batch_size=32,
                                                     lr=0.03))
    return train_pack(recipe, base / "pack")


def recall(pack_dir, folder, label: str) -> dict[str, float]:
    """Share of the images of ``label`` in ``folder`` that each model calls ``label``."""
    pack = load_pack(pack_dir, MODELS)
    files = scan_class_folders(folder, pack.labels)
    k = pack.labels.index(label)
    mine = [str(p) for p, t in zip(files.paths, files.targets) if t == k]
    results = list(Engine(pack, MODELS).classify(mine))
    return {m: float(np.mean([r.proba[m].argmax() == k for r in results])) for m in MODELS}


def test_fine_tuning_on_corrections_fixes_the_confused_class(confused_pack, tiny_dataset, tmp_path):
    val = tiny_dataset[1]
    before = recall(confused_pack, val, "gamma")
    assert before["hqnn"] <= 0.5, before  # the class really is confused
    # a technologist reviews a new smear and verifies every cell with its true class
    smear = make_dataset(tmp_path / "smear", 8, 2)
    pack = load_pack(confused_pack, MODELS)
    paths = [str(p) for p in sorted(smear.rglob("*.png"))]
    review = Review.from_results(Engine(pack, MODELS).classify(paths), pack.labels, MODELS, pack.name,
                                 folder=str(smear))
    for label in pack.labels:
        review.decide([p for p in paths if f"/{label}/" in p], label)
    manifest = write_manifest(review, tmp_path / "corrections.csv")
    files = read_manifest(manifest, pack.labels)
    assert len(files) == 24 and files.class_counts() == {"alpha": 8, "beta": 8, "gamma": 8}
    out = fine_tune_pack(FineTuneRecipe(pack_dir=str(confused_pack), manifest=str(manifest),
                                        name="confused-corrected"), tmp_path / "corrected")
    after = recall(out, val, "gamma")
    print(f"gamma recall before {before}, after {after}")
    for m in MODELS:
        assert after[m] >= before[m] + 0.3, (m, before, after)
    card = json.loads((out / "card.json").read_text())
    used = card["training"]["corrections"]
    assert used == [{"manifest": str(manifest.resolve()), "count": 24, "sha256": sha256_file(manifest)}]
    assert card["training"]["fine_tuned_from"]["pack"] == "confused"
    base_count = json.loads((confused_pack / "card.json").read_text())["orientations"]["count"]
    assert card["orientations"] == {"count": base_count, "carried_over_from": "confused"}
    assert card["metrics"]["validation"] == {"split": "none given", "models": {}}
    assert card["metrics"]["base_pack_validation"]["models"]["hqnn"]["per_class"]["gamma"]["recall"] <= 0.5

    # a verified picture deleted since: training goes on without it and the card says so
    gone = Path(paths[0])
    gone.unlink()
    again = fine_tune_pack(FineTuneRecipe(pack_dir=str(confused_pack), manifest=str(manifest), epochs=1,
                                          name="one-gone"), tmp_path / "one-gone")
    card = json.loads((again / "card.json").read_text())
    left_out = card["training"]["left_out"]
    assert left_out["n_unusable"] + left_out["n_passed_over"] == 1 and card["training"]["n_train"] == 23
    assert Path(left_out["examples"][0]["path"]).name == gone.name
