"""Per-model end-to-end fine-tuning: each model's own backbone, in the pack, the engine, the CLI and the GUI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from hqnn_desktop.cli import main
from hqnn_desktop.core.build import AdaptConfig, HeadConfig, PackRecipe, train_pack
from hqnn_desktop.core.datasets import load_images, scan_class_folders
from hqnn_desktop.core.heads import MODEL_KINDS, Head
from hqnn_desktop.core.packs import (
    BACKBONE_FILE,
    PackError,
    load_pack,
    model_backbone_file,
    save_pack,
)
from hqnn_desktop.core.predict import Engine
from hqnn_desktop.core.saliency import grad_cam
from hqnn_desktop.core.train import Callbacks, FeatureExtractor, TrainingCancelled, fine_tune_models

SMALL = ["--input-size", "32", "--qubits", "3", "--layers", "1", "--head-epochs", "2", "--batch-size", "16"]


@pytest.fixture(scope="module")
def per_model_pack(tiny_dataset, tmp_path_factory):
    """A tiny pack of all three models trained with the option, through the CLI (one epoch each)."""
    train, val = tiny_dataset
    out = tmp_path_factory.mktemp("per_model") / "own"
    rc = main(["train", str(train), "--val-dir", str(val), "--name", "own", "--out", str(out), *SMALL,
               "--fine-tune-per-model", "--fine-tune-per-model-epochs", "1"])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def val_images(tiny_dataset) -> np.ndarray:
    files = scan_class_folders(tiny_dataset[1])
    images, errors = load_images(files.paths[::3], 32)
    assert not any(errors)
    return images


def test_pack_holds_one_checked_backbone_per_model(per_model_pack):
    card = json.loads((per_model_pack / "card.json").read_text())
    shared = (per_model_pack / BACKBONE_FILE).read_bytes()
    for kind in MODEL_KINDS:
        name = model_backbone_file(kind)
        assert card["models"][kind]["backbone_file"] == name
        assert name in card["files"]
        assert (per_model_pack / name).read_bytes() != shared, kind
    recorded = card["training"]["fine_tune_per_model"]
    assert recorded["epochs"] == 1 and recorded["lr"] == pytest.approx(1e-4)
    history = card["training"]["history"]["fine_tune_per_model"]
    assert set(history) == set(MODEL_KINDS) and all(len(h) == 1 for h in history.values())


def _resave(pack, folder, **kw):
    card = {k: v for k, v in pack.card.items() if k not in ("files", "weights_dtype", "ood")}
    return save_pack(folder, card, pack.extractor, pack.heads, ood=pack.ood, **kw)


def test_round_trip_and_each_model_reads_its_own_backbone(per_model_pack, val_images, tmp_path):
    pack = load_pack(per_model_pack)
    assert set(pack.model_extractors) == set(MODEL_KINDS)
    engine = Engine(pack)
    first = engine.run_batch(val_images)[0]
    again = Engine(load_pack(_resave(pack, tmp_path / "again", model_extractors=pack.model_extractors)))
    with torch.inference_mode():
        shared = engine.features(val_images)
        through_shared = {k: torch.softmax(pack.heads[k](shared), 1).numpy() for k in MODEL_KINDS}
    for kind, proba in again.run_batch(val_images)[0].items():
        np.testing.assert_allclose(first[kind], proba, atol=1e-6)
    assert max(np.abs(first[k] - through_shared[k]).max() for k in MODEL_KINDS) > 1e-3
    assert engine.stage_seconds["backbone"] > 0
    only_hqnn = Engine(pack, ("hqnn",)).run_batch(val_images)[0]  # as the hardware rerun runs it
    np.testing.assert_allclose(only_hqnn["hqnn"], first["hqnn"], atol=1e-6)
    cam, _ = grad_cam(pack, val_images[0], "classical")
    assert cam.shape == val_images[0].shape[:2]
    plain = _resave(pack, tmp_path / "plain")  # without its own backbones the card names none
    card = json.loads((plain / "card.json").read_text())
    assert not any("backbone_file" in entry for entry in card["models"].values())
    assert sorted(card["files"]) == [BACKBONE_FILE, "heads.safetensors"]


def test_tampered_or_unlisted_own_backbone_is_refused(per_model_pack, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(per_model_pack, bad)
    name = model_backbone_file("hqnn")
    data = bytearray((bad / name).read_bytes())
    data[-7] ^= 0xFF
    (bad / name).write_bytes(bytes(data))
    with pytest.raises(PackError, match=rf"damaged or was modified: {name}"):
        load_pack(bad)
    card = json.loads((bad / "card.json").read_text())
    del card["files"][name]
    (bad / "card.json").write_text(json.dumps(card))
    with pytest.raises(PackError, match="gives no checksum"):
        load_pack(bad, ("hqnn",))


def test_classify_command_on_a_per_model_pack(per_model_pack, tiny_dataset, tmp_path):
    out = tmp_path / "r.csv"
    assert main(["classify", str(tiny_dataset[1]), "--pack", str(per_model_pack), "--out", str(out)]) == 0
    rows = out.read_text().splitlines()[1:]
    assert len(rows) == 3 * len(list(tiny_dataset[1].rglob("*.png")))


def _models(seed: int):
    torch.manual_seed(seed)
    extractor = FeatureExtractor("efficientnet_lite0", pretrained=False)
    heads = {k: Head(k, extractor.feature_dim, 3, 1, 3) for k in ("hqnn", "baseline")}
    return extractor, heads


def test_fine_tuning_is_deterministic_and_leaves_its_inputs_alone():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    targets = rng.integers(0, 3, 8)
    cfg = AdaptConfig(input_size=32, epochs=1, batch_size=8, lr=1e-3, seed=4)
    extractor, heads = _models(0)
    before = {k: v.clone() for k, v in extractor.state_dict().items()}
    runs = [fine_tune_models(extractor, heads, images, targets, cfg, device="cpu") for _ in range(2)]
    for kind in heads:
        for (name, a), b in zip(runs[0][0][kind].state_dict().items(), runs[1][0][kind].state_dict().values()):
            assert torch.equal(a, b), (kind, name)
        for (name, a), b in zip(runs[0][1][kind].state_dict().items(), runs[1][1][kind].state_dict().values()):
            assert torch.equal(a, b), (kind, name)
    for name, value in extractor.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert not torch.equal(runs[0][0]["hqnn"].state_dict()["backbone.net._conv_stem.weight"],
                           before["backbone.net._conv_stem.weight"])


def test_cancel_during_per_model_fine_tuning_leaves_no_pack(tiny_dataset, tmp_path):
    train, val = tiny_dataset
    recipe = PackRecipe(train_dir=str(train), val_dir=str(val), name="cancelled", models=("baseline",),
                        adapt=AdaptConfig(input_size=32, batch_size=24, pretrained=False),
                        heads=HeadConfig(n_qubits=3, layers=1, epochs=1, warmup_epochs=0, batch_size=16),
                        fine_tune_per_model=True, fine_tune_per_model_epochs=1)
    stages = []

    def cancelled() -> bool:
        return bool(stages) and stages[-1] == "fine_tune_model"

    out = tmp_path / "cancelled"
    with pytest.raises(TrainingCancelled):
        train_pack(recipe, out, Callbacks(progress=lambda stage, *_: stages.append(stage), cancelled=cancelled))
    assert "fine_tune_model" in stages and not out.exists()


def test_training_tab_passes_the_option(qtbot, tiny_dataset):
    from hqnn_desktop.gui.training_tab import TrainingTab

    tab = TrainingTab()
    qtbot.addWidget(tab)
    tab.train_dir.setText(str(tiny_dataset[0]))
    assert not tab.per_model_epochs.isEnabled() and "times slower" in tab.fine_tune_per_model.toolTip()
    tab.fine_tune_per_model.setChecked(True)
    tab.per_model_epochs.setValue(2)
    recipe = tab.recipe()
    assert tab.per_model_epochs.isEnabled()
    assert recipe.fine_tune_per_model and recipe.fine_tune_per_model_epochs == 2
