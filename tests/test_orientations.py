"""Orientation averaging: the views, the engine's average over them, the card's choice and the CLI."""

import json
import shutil

import numpy as np
import pytest

from hqnn_desktop.cli import main
from hqnn_desktop.core.orientations import card_orientations, views
from hqnn_desktop.core.packs import load_pack, user_packs_dir
from hqnn_desktop.core.predict import Engine

from .conftest import BUNDLED, SAMPLES


@pytest.fixture(scope="module")
def bci4():
    return load_pack(BUNDLED / "bci4")


@pytest.fixture(scope="module")
def pictures(bci4):
    """Model inputs of four real sample pictures, one per class, through the pack's own decode path."""
    from hqnn_desktop.core.imageio import load_rgb

    paths = [min((SAMPLES / "bci4" / label).iterdir()) for label in bci4.labels]
    return np.stack([bci4.prepare(load_rgb(p))[0] for p in paths])


def test_views_are_the_picture_then_its_quarter_turns_then_their_mirror_images():
    batch = np.arange(2 * 3 * 3 * 1).reshape(2, 3, 3, 1)
    eight = list(views(batch, 8))
    assert len(eight) == 8 and eight[0] is batch and len(list(views(batch, 4))) == 4
    assert np.array_equal(eight[1][0, :, :, 0], np.rot90(batch[0, :, :, 0]))
    assert np.array_equal(eight[4][0, :, :, 0], batch[0, :, ::-1, 0])
    assert len({v.tobytes() for v in eight}) == 8  # all different
    with pytest.raises(ValueError, match="one of 1, 4, 8"):
        list(views(batch, 3))


def test_the_engine_averages_each_models_probabilities_over_the_orientations(bci4, pictures):
    one, eight = Engine(bci4, orientations=1), Engine(bci4, orientations=8)
    averaged, feats, codes, embs = eight.run_batch(pictures, keep_latents=True)
    by_view = [one.run_batch(view)[0] for view in views(pictures, 8)]
    for kind in bci4.heads:
        assert np.allclose(averaged[kind], np.mean([p[kind] for p in by_view], axis=0), atol=1e-5)
        assert np.allclose(averaged[kind].sum(1), 1, atol=1e-5)
    as_is = one.run_batch(pictures, keep_latents=True)
    assert np.allclose(feats, as_is[1], atol=1e-5)  # the flag, codes and embeddings: the picture as it is
    assert all(np.allclose(codes[k], as_is[2][k], atol=1e-5) and np.allclose(embs[k], as_is[3][k], atol=1e-5)
               for k in bci4.heads)
    # A picture turned or mirrored before it reaches the engine gets the same answer.
    for view in (np.rot90(pictures, 1, axes=(1, 2)), pictures[:, ::-1]):  # a quarter turn; upside down
        turned = eight.run_batch(view)[0]
        assert all(np.allclose(turned[k], averaged[k], atol=1e-4) for k in bci4.heads)


def test_the_card_chooses_the_default_and_a_wrong_entry_is_refused_in_words(tmp_path, capsys):
    pack = user_packs_dir() / "turned"
    shutil.copytree(BUNDLED / "bci4", pack)
    card = json.loads((pack / "card.json").read_text())
    card.update(name="turned", orientations={"count": 4, "validation_macro_f1": {
        "1": {"hqnn": 0.8, "classical": 0.7, "baseline": 0.75}, "4": {"hqnn": 0.9, "classical": 0.8, "baseline": 0.85}}})
    (pack / "card.json").write_text(json.dumps(card))
    assert card_orientations(card) == 4 and Engine(load_pack(pack)).orientations == 4
    assert main(["packs"]) == 0
    listing = capsys.readouterr().out
    assert "orientations: 4 (averaged over the picture's 4 quarter turns)" in listing.split("turned  [user]")[1]
    assert "orientations: 1 (each picture as it is)" in listing.split("pbc8  [bundled]")[1].split("\n\n")[0]
    assert ("validation macro-F1: hqnn 0.9000, classical 0.8000, baseline 0.8500 (with its 4 orientations; as it "
            "is: hqnn 0.") in listing.split("turned  [user]")[1]
    folder = tmp_path / "cells"
    shutil.copytree(SAMPLES / "bci4", folder)
    for given, expected in ((None, 4), ("1", 1)):
        out = tmp_path / f"report_{expected}.json"
        assert main(["evaluate", str(folder), "--pack", "turned", "--out", str(out),
                     *(["--orientations", given] if given else [])]) == 0
        assert json.loads(out.read_text())["orientations"] == expected
    with pytest.raises(SystemExit) as refused:
        main(["classify", str(folder), "--pack", "turned", "--orientations", "3", "--out", str(tmp_path / "x.csv")])
    assert refused.value.code == 2 and "invalid choice: 3 (choose from 1, 4, 8)" in capsys.readouterr().err
    card["orientations"] = {"count": 5}
    (pack / "card.json").write_text(json.dumps(card))
    with pytest.raises(Exception, match="orientation averaging is not one of 1, 4, 8"):
        load_pack(pack)


def test_the_model_card_says_how_many_orientations_the_pack_averages():
    from hqnn_desktop.gui.main_window import card_summary_html

    card = json.loads((BUNDLED / "bci4" / "card.json").read_text())
    card["orientations"] = {"count": 8, "validation_macro_f1": {"8": {"hqnn": 0.9, "classical": 0.8, "baseline": 0.85}}}
    html = card_summary_html(card)
    assert "<b>Orientations:</b> probabilities averaged over the picture's 4 quarter turns and their mirror images" \
        in html and "Validation macro-F1 with them: HQNN 0.9000, Classical Matched 0.8000, Baseline 0.8500" in html
    del card["orientations"]
    assert "Orientations" not in card_summary_html(card)


def test_train_chooses_the_orientations_on_validation_or_takes_the_count_given(tiny_dataset, tmp_path, capsys):
    train, val = tiny_dataset
    common = ["--val-dir", str(val), "--qubits", "3", "--head-epochs", "2", "--input-size", "64"]
    assert main(["train", str(train), "--name", "chosen", "--out", str(tmp_path / "chosen"), *common]) == 0
    chosen = json.loads((tmp_path / "chosen" / "card.json").read_text())["orientations"]
    assert set(chosen["validation_macro_f1"]) == {"1", "4", "8"} and chosen["count"] in (1, 4, 8)
    assert all(0 <= f <= 1 for scores in chosen["validation_macro_f1"].values() for f in scores.values())
    assert set(chosen["validation_macro_f1"]["8"]) == {"hqnn", "classical", "baseline"}
    err = capsys.readouterr().err
    assert "turned copies of the validation images scored" in err
    assert ("It averages each picture's probabilities over" in err) == (chosen["count"] > 1)
    assert ("gained too little" in err or "did worse" in err) == (chosen["count"] == 1)
    assert main(["train", str(train), "--name", "given", "--out", str(tmp_path / "given"), *common,
                 "--orientations", "4"]) == 0
    given = json.loads((tmp_path / "given" / "card.json").read_text())["orientations"]
    assert given["count"] == 4 and set(given["validation_macro_f1"]) == {"1", "4"}
    assert Engine(load_pack(tmp_path / "given")).orientations == 4
