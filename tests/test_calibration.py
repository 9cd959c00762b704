"""Temperature scaling: the fit, the card, the engine, new and fine-tuned packs, the CLI's confidences."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from hqnn_desktop.cli import main
from hqnn_desktop.core.build import AdaptConfig, HeadConfig, PackRecipe, train_pack
from hqnn_desktop.core.calibration import (
    CalibrationError,
    calibrate,
    calibrate_or_skip,
    calibrated_proba,
    engine_logits,
    fit_temperature,
    nll,
    record_calibration,
    temperature_of,
)
from hqnn_desktop.core.datasets import load_images, scan_class_folders
from hqnn_desktop.core.finetune import FineTuneRecipe, fine_tune_pack
from hqnn_desktop.core.heads import MODEL_KINDS
from hqnn_desktop.core.metrics import expected_calibration_error
from hqnn_desktop.core.packs import PackError, load_pack
from hqnn_desktop.core.predict import Engine


def synthetic(temperature: float, n: int = 3000, classes: int = 5, seed: int = 0):
    """Labels drawn from softmax(z), and the logits z * T of a model whose right temperature is T."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, classes)) * 2.0
    p = calibrated_proba(z, 1.0).astype(np.float64)
    y = np.array([rng.choice(classes, p=row / row.sum()) for row in p])
    return z * temperature, y


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_recovers_a_known_temperature(true_t):
    z, y = synthetic(true_t)
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.08)
    assert fit_temperature(z, y) == fit_temperature(z, y)  # deterministic


def test_under_confident_model_gets_sharper_better_probabilities_and_same_predictions():
    soft, y = synthetic(0.4)  # like label smoothing: the right order, too little confidence
    fit = calibrate({"m": soft}, y, {"folder": "synthetic"})["models"]["m"]
    assert fit["temperature"] == pytest.approx(0.4, rel=0.08)
    assert fit["nll_after"] < fit["nll_before"] and fit["ece_after"] < fit["ece_before"] / 2
    after = calibrated_proba(soft, fit["temperature"])
    assert (after.argmax(1) == soft.argmax(1)).all()
    assert fit["ece_after"] == pytest.approx(expected_calibration_error(after, y))
    assert nll(soft, y, fit["temperature"]) == pytest.approx(fit["nll_after"])


@pytest.mark.parametrize("logits, targets, message", [
    (np.zeros((0, 3)), np.zeros(0, int), "No validation images"),
    (np.ones((4, 3)), np.zeros(4, int), "all of one class"),
    (np.ones((4, 3)), np.array([0, 1, 2]), "Expected logits"),
    (np.ones((2, 3)), np.array([0, 3]), "class indices"),
    (np.array([[np.nan, 0.0], [0.0, 1.0]]), np.array([0, 1]), "not finite"),
    (np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 1]), "Every validation image is classified correctly"),
])
def test_degenerate_input_is_refused_clearly(logits, targets, message):
    with pytest.raises(CalibrationError, match=message):
        fit_temperature(logits, targets)


def test_a_pack_that_cannot_calibrate_keeps_its_fallback_and_says_why():
    record = calibrate_or_skip({"hqnn": np.ones((3, 2)), "baseline": np.ones((3, 2))}, np.zeros(3, int),
                               {"folder": "v"}, fallback={"baseline": 0.8})
    assert record["models"] == {"hqnn": {"temperature": 1.0}, "baseline": {"temperature": 0.8}}
    assert "one class" in record["skipped"] and record["data"] == {"folder": "v", "n_images": 3}
    none = calibrate_or_skip({"hqnn": np.zeros((0, 2))}, np.zeros(0, int), {"folder": "v"})
    assert "No validation images" in none["skipped"] and none["models"] == {"hqnn": {"temperature": 1.0}}


def test_a_model_that_cannot_calibrate_does_not_cost_the_others_their_temperature():
    under_confident, y = synthetic(0.4)
    perfect = np.eye(5)[y] * 3.0  # every image right: no temperature can be fitted for it
    broken = under_confident.copy()
    broken[0, 0] = np.nan
    record = calibrate_or_skip({"hqnn": perfect, "baseline": under_confident, "classical": broken}, y,
                               {"folder": "v"}, fallback={"hqnn": 0.9})
    assert "skipped" not in record
    hqnn, baseline, classical = (record["models"][k] for k in ("hqnn", "baseline", "classical"))
    assert hqnn["temperature"] == 0.9 and "Every validation image is classified correctly" in hqnn["skipped"]
    assert classical["temperature"] == 1.0 and "not finite" in classical["skipped"]
    assert baseline == calibrate({"baseline": under_confident}, y, {"folder": "v"})["models"]["baseline"]
    assert baseline["temperature"] == pytest.approx(0.4, rel=0.08) and "skipped" not in baseline
    card = record_calibration({"models": {k: {} for k in record["models"]}}, record)
    assert {k: v["temperature"] for k, v in card["models"].items()} == \
        {"hqnn": 0.9, "baseline": baseline["temperature"], "classical": 1.0}
    with pytest.raises(CalibrationError, match="classified correctly"):  # the strict fit still refuses
        calibrate({"hqnn": perfect, "baseline": under_confident}, y, {"folder": "v"})


def test_card_temperature_defaults_to_one_and_is_checked():
    assert temperature_of({"models": {"hqnn": {"parameters": {}}}}, "hqnn") == 1.0
    assert temperature_of({"models": {"hqnn": {"temperature": 0.7}}}, "hqnn") == 0.7
    for bad in (0, -1.0, "warm", float("nan"), True):
        with pytest.raises(PackError, match="invalid temperature"):
            temperature_of({"name": "p", "models": {"hqnn": {"temperature": bad}}}, "hqnn")


@pytest.fixture(scope="module")
def calibrated_pack(tiny_dataset, tmp_path_factory):
    train, val = tiny_dataset
    recipe = PackRecipe(train_dir=str(train), val_dir=str(val), name="warm",
                        adapt=AdaptConfig(input_size=32, epochs=1, batch_size=16),
                        heads=HeadConfig(n_qubits=3, layers=1, epochs=4, batch_size=16, lr=0.03))
    return train_pack(recipe, tmp_path_factory.mktemp("calibration") / "warm")


@pytest.fixture(scope="module")
def val_images(tiny_dataset) -> np.ndarray:
    images, errors = load_images(scan_class_folders(tiny_dataset[1]).paths[::4], 32)
    assert not any(errors)
    return images


def _with_temperatures(pack_dir, folder, temperatures: dict[str, float] | None):
    """A copy of a pack whose card gives these temperatures (None: no temperature at all)."""
    shutil.copytree(pack_dir, folder)
    card = json.loads((folder / "card.json").read_text())
    for kind, entry in card["models"].items():
        entry.pop("temperature")
        if temperatures is not None:
            entry["temperature"] = temperatures[kind]
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_built_pack_carries_temperatures_and_engine_applies_them(calibrated_pack, val_images, tmp_path):
    card = json.loads((calibrated_pack / "card.json").read_text())
    record = card["calibration"]
    assert record["data"]["n_images"] == card["training"]["n_val"]
    assert record["data"]["folder"].endswith("val") and "skipped" not in record
    for kind in MODEL_KINDS:
        t = card["models"][kind]["temperature"]
        assert t == record["models"][kind]["temperature"] and 0.05 <= t <= 20 and t != 1.0
        assert record["models"][kind]["nll_after"] <= record["models"][kind]["nll_before"]
    pack = load_pack(calibrated_pack)
    engine = Engine(pack)
    proba = engine.run_batch(val_images)[0]
    with torch.inference_mode():
        feats = engine.features(val_images)
        logits = {k: pack.heads[k](feats).numpy() for k in MODEL_KINDS}
    for kind in MODEL_KINDS:
        np.testing.assert_allclose(proba[kind], calibrated_proba(logits[kind], card["models"][kind]["temperature"]),
                                   atol=1e-5)
        assert (proba[kind].argmax(1) == logits[kind].argmax(1)).all()
    plain = load_pack(_with_temperatures(calibrated_pack, tmp_path / "plain", None))
    for kind, p in Engine(plain).run_batch(val_images)[0].items():
        np.testing.assert_allclose(p, torch.softmax(torch.as_tensor(logits[kind]), 1).numpy(), atol=1e-5)


def test_classify_command_confidence_follows_the_temperature(calibrated_pack, tiny_dataset, tmp_path):
    val = tiny_dataset[1]
    confidences, labels = {}, {}
    for t in (1.0, 4.0):
        pack_dir = _with_temperatures(calibrated_pack, tmp_path / f"t{t}", dict.fromkeys(MODEL_KINDS, t))
        out = tmp_path / f"t{t}.csv"
        assert main(["classify", str(val), "--pack", str(pack_dir), "--models", "hqnn", "--out", str(out)]) == 0
        with open(out, newline="") as fh:
            rows = list(csv.DictReader(fh))
        confidences[t] = np.array([float(r["confidence"]) for r in rows])
        labels[t] = [r["label"] for r in rows]
    assert labels[1.0] == labels[4.0]
    assert (confidences[4.0] < confidences[1.0]).all()
    pack = load_pack(tmp_path / "t4.0", ("hqnn",))
    kept, logits, errors = engine_logits(pack, sorted(map(str, val.rglob("*.png"))), ("hqnn",))
    assert not errors and len(kept) == len(confidences[4.0])
    expected = np.sort(calibrated_proba(logits["hqnn"], 4.0).max(1))
    np.testing.assert_allclose(np.sort(confidences[4.0]), expected, atol=2e-6)


def test_fine_tuned_pack_refits_on_validation_or_keeps_the_base_temperatures(calibrated_pack, tiny_dataset,
                                                                              tmp_path):
    train, val = tiny_dataset
    manifest = tmp_path / "corrections.csv"
    rows = [f"{p},{p.parent.name}" for p in scan_class_folders(train).paths[::6]]
    manifest.write_text("path,label\n" + "\n".join(rows) + "\n")
    base = json.loads((calibrated_pack / "card.json").read_text())
    kept = fine_tune_pack(FineTuneRecipe(pack_dir=str(calibrated_pack), manifest=str(manifest), name="kept",
                                         epochs=1), tmp_path / "kept")
    card = json.loads((kept / "card.json").read_text())
    assert card["calibration"]["carried_over_from"] == "warm"
    assert card["calibration"]["base"] == base["calibration"]
    assert {k: v["temperature"] for k, v in card["models"].items()} == \
        {k: v["temperature"] for k, v in base["models"].items()}
    refit = fine_tune_pack(FineTuneRecipe(pack_dir=str(calibrated_pack), manifest=str(manifest), name="refit",
                                          epochs=1, val=str(val)), tmp_path / "refit")
    card = json.loads((refit / "card.json").read_text())
    assert card["calibration"]["data"]["folder"] == str(val)
    for kind in MODEL_KINDS:
        assert card["models"][kind]["temperature"] == card["calibration"]["models"][kind]["temperature"]
        ece = card["metrics"]["validation"]["models"][kind]["ece"]
        assert ece == pytest.approx(card["calibration"]["models"][kind]["ece_after"])


def test_hardware_rerun_probabilities_use_the_temperature(calibrated_pack):
    from hqnn_desktop.hardware.rerun import _probabilities

    pack = load_pack(calibrated_pack, ("hqnn",))
    z = np.random.default_rng(0).uniform(-1, 1, (5, 3))
    with torch.no_grad():
        logits = pack.heads["hqnn"].classifier(torch.as_tensor(z, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(_probabilities(pack, z),
                               calibrated_proba(logits, pack.card["models"]["hqnn"]["temperature"]), atol=1e-6)
