"""Training on generated cell images, pack round trip, and refusal of damaged packs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from hqnn_desktop.core.build import AdaptConfig, HeadConfig, PackRecipe, train_pack
from hqnn_desktop.core.datasets import (
    DatasetError,
    load_images,
    scan_class_folders,
    split_validation,
)
from hqnn_desktop.core.packs import PackError, list_packs, load_pack, resolve_pack
from hqnn_desktop.core.predict import Engine
from hqnn_desktop.core.train import AdaptConfig as _AC
from hqnn_desktop.core.train import Callbacks, TrainingCancelled, adapt_backbone, supcon_loss


def _recipe(train, val, **kw) -> PackRecipe:
    return PackRecipe(train_dir=str(train), val_dir=str(val), name="tiny",
                      adapt=AdaptConfig(input_size=64, epochs=1, batch_size=16),
                      heads=HeadConfig(n_qubits=4, layers=2, epochs=40, batch_size=16, lr=0.03), **kw)


@pytest.fixture(scope="module")
def tiny_pack(tiny_dataset, tmp_path_factory):
    train, val = tiny_dataset
    out = tmp_path_factory.mktemp("packs") / "tiny"
    return train_pack(_recipe(train, val), out)


def test_training_clearly_beats_chance(tiny_pack):
    card = json.loads((tiny_pack / "card.json").read_text())
    for kind in ("hqnn", "classical", "baseline"):
        acc = card["metrics"]["validation"]["models"][kind]["accuracy"]
        assert acc >= 0.8, (kind, acc)  # chance is 1/3
    assert card["labels"] == ["alpha", "beta", "gamma"]
    counts = card["models"]
    assert counts["hqnn"]["parameters"]["transform"] == counts["classical"]["parameters"]["transform"] == 24


def test_every_head_starts_from_the_warm_up_decisions():
    """Eighteen images: one optimiser step per epoch, so where a head starts decides where it
    ends. The identity circuit reverses the code's sign; started from a shared random
    classifier, the HQNN scored 0 % here while the Baseline scored 100 %."""
    from hqnn_desktop.core.train import predict_proba, train_heads

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 64))
    y, y_val = np.repeat(np.arange(3), 6), np.repeat(np.arange(3), 3)
    x = (centres[y] + 0.8 * rng.normal(size=(18, 64))).astype(np.float32)
    x_val = (centres[y_val] + 0.8 * rng.normal(size=(9, 64))).astype(np.float32)
    heads, _ = train_heads(x, y, 3, HeadConfig(n_qubits=4, layers=1, epochs=10))
    for kind, head in heads.items():
        assert (predict_proba(head, x_val).argmax(1) == y_val).mean() >= 0.8, kind


def test_pack_round_trip_gives_same_predictions(tiny_pack, tiny_dataset):
    pack = load_pack(tiny_pack)
    files = scan_class_folders(tiny_dataset[1])
    images, errors = load_images(files.paths[:6], pack.input_size)
    assert errors == [None] * 6
    first = Engine(pack).run_batch(images)[0]
    again = Engine(load_pack(tiny_pack)).run_batch(images)[0]
    for kind in first:
        np.testing.assert_allclose(first[kind], again[kind], atol=1e-6)
        np.testing.assert_allclose(first[kind].sum(1), 1.0, atol=1e-5)


def test_tampered_weights_are_refused(tiny_pack, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_pack, bad)
    data = bytearray((bad / "heads.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (bad / "heads.safetensors").write_bytes(bytes(data))
    with pytest.raises(PackError, match="damaged or was modified"):
        load_pack(bad)


def test_truncated_and_missing_files_are_refused(tiny_pack, tmp_path):
    bad = tmp_path / "trunc"
    shutil.copytree(tiny_pack, bad)
    raw = (bad / "backbone.safetensors").read_bytes()
    (bad / "backbone.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(PackError, match="instead of the .*cut short by an interrupted copy"):
        load_pack(bad)
    (bad / "backbone.safetensors").unlink()
    with pytest.raises(PackError, match="missing"):
        load_pack(bad)
    (bad / "card.json").write_text("{not json")
    with pytest.raises(PackError, match="damaged"):
        load_pack(bad)


def test_user_pack_is_listed_and_resolvable(tiny_dataset, isolated_user_dirs):
    from hqnn_desktop.core.packs import user_packs_dir

    train, val = tiny_dataset
    recipe = _recipe(train, val, models=("baseline",))
    recipe.name = "mine"
    recipe.heads.epochs = 2
    train_pack(recipe, user_packs_dir() / "mine")
    assert "mine" in [p.name for p in list_packs()]
    assert resolve_pack("mine") == user_packs_dir() / "mine"
    with pytest.raises(PackError, match="No model pack named"):
        resolve_pack("nope")


def test_adaptation_is_deterministic_resumable_and_cancellable(tiny_dataset, tmp_path):
    files = scan_class_folders(tiny_dataset[0])
    images, _ = load_images(files.paths, 32)
    y = np.asarray(files.targets)
    cfg = _AC(input_size=32, epochs=2, batch_size=24, seed=3)
    a, _ = adapt_backbone(images, y, 3, cfg, device="cpu")
    b, _ = adapt_backbone(images, y, 3, cfg, device="cpu")
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k
    ckpt = tmp_path / "adapt.ckpt"
    calls = {"n": 0}

    def cancel_after_first_epoch() -> bool:
        calls["n"] += 1
        return calls["n"] > len(y) // cfg.batch_size

    with pytest.raises(TrainingCancelled):
        adapt_backbone(images, y, 3, cfg, device="cpu", checkpoint=ckpt,
                       callbacks=Callbacks(cancelled=cancel_after_first_epoch))
    assert ckpt.exists()
    resumed, hist_r = adapt_backbone(images, y, 3, cfg, device="cpu", checkpoint=ckpt)
    assert [h["epoch"] for h in hist_r] == [1, 2]
    for (k, va), (_, vr) in zip(a.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(va, vr, atol=1e-5), k


def test_adaptation_can_start_from_another_packs_backbone(tiny_dataset, tmp_path):
    from safetensors.torch import save_file

    from hqnn_desktop.core.train import FeatureExtractor

    files = scan_class_folders(tiny_dataset[0])
    images, _ = load_images(files.paths, 32)
    start = FeatureExtractor("efficientnet_lite0", pretrained=False)  # far from the ImageNet weights
    save_file({k: v.contiguous() for k, v in start.state_dict().items()}, str(tmp_path / "start.safetensors"))
    cfg = _AC(input_size=32, epochs=1, batch_size=24, lr=1e-9, start_from=str(tmp_path / "start.safetensors"))
    adapted, _ = adapt_backbone(images, np.asarray(files.targets), 3, cfg, device="cpu")
    for name, value in start.named_parameters():
        assert torch.allclose(dict(adapted.extractor.named_parameters())[name], value, atol=1e-6), name


def test_grouped_split_keeps_groups_together(tiny_dataset):
    files = scan_class_folders(tiny_dataset[0])
    tr, va = split_validation(files, 0.3, seed=0, group_pattern=r"^s(\d+)_")
    groups = lambda f: {p.name.split("_")[0] for p in f.paths}
    assert groups(tr).isdisjoint(groups(va))
    assert len(tr) + len(va) == len(files)
    with pytest.raises(DatasetError, match="between 0 and 1"):
        split_validation(files, 1.5, 0)


def test_a_small_split_puts_every_class_on_both_sides():
    from pathlib import Path

    from hqnn_desktop.core.datasets import LabelledFiles

    files = LabelledFiles([Path(f"/d/{c}/{c}_{i}.png") for c in "abc" for i in range(4)],
                          [k for k in range(3) for _ in range(4)], ["a", "b", "c"])
    for seed in range(20):
        tr, va = split_validation(files, 0.15, seed)
        assert set(tr.targets) == set(va.targets) == {0, 1, 2}, seed
        assert len(tr) + len(va) == 12 and not set(tr.paths) & set(va.paths)


def test_supcon_prefers_clustered_embeddings():
    y = torch.tensor([0, 0, 1, 1])
    good = torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    bad = torch.tensor([[1.0, 0], [0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    assert supcon_loss(good, y, 0.2) < supcon_loss(bad, y, 0.2)


def test_pack_for_another_circuit_is_refused(tiny_pack, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_pack, other)
    card = json.loads((other / "card.json").read_text())
    card["circuit"]["ansatz_id"] = "something-else/v0"
    (other / "card.json").write_text(json.dumps(card))
    with pytest.raises(PackError, match="different quantum circuit"):
        load_pack(other)
    assert set(load_pack(other, models=("baseline",)).heads) == {"baseline"}
