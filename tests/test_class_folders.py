"""Class folders checked against a model's or a training folder's classes: a "did you mean" only for
near-identical names (never another cell type), the right words for where the classes come from, and
links back up the tree passed over rather than taken for classes."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from hqnn_desktop.core.datasets import (
    DatasetError,
    near_class,
    read_manifest,
    scan_class_folders,
    scan_dataset,
    training_reference,
)

from .conftest import BUNDLED, SAMPLES

PBC8 = ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"]
BCI4 = ["eosinophil", "lymphocyte", "monocyte", "neutrophil"]
needs_pbc8 = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")


def labelled(root, classes, per_class=2):
    """``root/<class>/`` holding real sample pictures of the bundled pbc8 set."""
    for name in classes:
        (root / name).mkdir(parents=True)
        pictures = sorted((SAMPLES / "pbc8" / name.strip().lower()).glob("*.jpg"))[:per_class]
        for picture in pictures:
            shutil.copy(picture, root / name / picture.name)
    return root


@pytest.mark.parametrize("folder, meant", [
    ("Basophil", "basophil"), ("basophil ", "basophil"), ("Basophils", "basophil"),
    ("EOSINOPHILES", "eosinophil"), ("lymphocytes", "lymphocyte"), ("Neutro_phil", "neutrophil"),
    ("nuetrophil", "neutrophil"), ("erythroblst", "erythroblast"), ("monocytte", "monocyte"),
    ("plateletz", "platelet"), ("IGs", "ig"), ("i-g", "ig"),
])
def test_a_near_identical_folder_name_gets_its_class(folder, meant):
    assert near_class(folder, PBC8) == meant


@pytest.mark.parametrize("folder, labels", [
    ("basophil", ["eosinophil"]), ("Basophils", ["eosinophil", "platelet"]), ("eosinophil", ["basophil"]),
    ("eosinophils", ["basophil", "platelet"]), ("monocyte", ["lymphocyte"]), ("lymphocytes", ["monocyte"]),
    ("neutrophil", ["eosinophil"]), ("Eosinophil", ["neutrophil", "basophil"]),
    ("ih", ["ig"]),  # one typo in a short name may well make another word
    ("blast", PBC8), ("neutrofil", PBC8),  # two letters changed: not surely the same class
])
def test_another_cell_type_is_never_suggested(folder, labels):
    assert near_class(folder, labels) is None


def test_a_folder_of_another_cell_type_gets_no_suggestion(tmp_path):
    data = labelled(tmp_path / "lab2", ["Basophil", "neutrophil"])
    with pytest.raises(DatasetError) as caught:
        scan_class_folders(data, BCI4)
    message = str(caught.value)
    assert f"These folders in {data} are not classes of the model: 'Basophil'." in message
    assert "meant" not in message and "eosinophil, lymphocyte, monocyte, neutrophil" in message


def test_a_plural_folder_name_is_suggested_its_class(tmp_path):
    data = labelled(tmp_path / "lab2", ["monocyte"])
    (data / "monocyte").rename(data / "Monocytes")
    with pytest.raises(DatasetError, match=r"not classes of the model: 'Monocytes' \(meant 'monocyte'\?\)"):
        scan_class_folders(data, BCI4)


def test_a_validation_folder_is_checked_against_the_training_folder_in_its_words(tmp_path):
    train = labelled(tmp_path / "lab2", ["basophil", "platelet"])
    val = labelled(tmp_path / "val_small", ["basophil", "eosinophil"])
    with pytest.raises(DatasetError) as caught:
        scan_dataset(val, scan_class_folders(train).labels, training_reference(train))
    message = str(caught.value)
    assert f"not classes of the training folder {train}: 'eosinophil'." in message
    assert f"The classes of the training folder {train} are: basophil, platelet." in message
    assert "model" not in message and "meant" not in message


def test_a_list_of_images_is_checked_against_the_training_folder_in_its_words(tmp_path):
    train = labelled(tmp_path / "lab2", ["basophil", "platelet"])
    picture = next((train / "basophil").iterdir())
    manifest = tmp_path / "val.csv"
    manifest.write_text(f"path,label\n{picture},eosinophil\n")
    with pytest.raises(DatasetError, match=f"classes the training folder {train} does not know: eosinophil"):
        scan_dataset(manifest, ["basophil", "platelet"], training_reference(train))
    assert training_reference(manifest) == f"the training list {manifest}"
    with pytest.raises(DatasetError, match="uses classes the model does not know: eosinophil"):
        read_manifest(manifest, ["basophil", "platelet"])


def looped(tmp_path):
    """``loop/`` with two real class folders, a link to itself, one to the folder above, two links
    pointing at each other, and a class gathered from elsewhere through a link."""
    data = labelled(tmp_path / "loop", ["basophil", "eosinophil"])
    os.symlink("../loop", data / "self")
    os.symlink("..", data / "up")
    os.symlink("round_b", data / "round_a")
    os.symlink("round_a", data / "round_b")
    elsewhere = labelled(tmp_path / "kept_elsewhere", ["monocyte"])
    os.symlink(elsewhere / "monocyte", data / "monocyte")
    return data


def test_links_back_up_or_round_in_a_circle_are_passed_over_not_classes(tmp_path):
    data = looped(tmp_path)
    files = scan_class_folders(data, PBC8)
    assert {k: n for k, n in files.class_counts().items() if n} == {"basophil": 2, "eosinophil": 2, "monocyte": 2}
    assert all(p.parent.name in ("basophil", "eosinophil", "monocyte") for p in files.paths)
    assert {p.name: why for p, why in files.skipped} == {
        "self": "a link back to the dataset folder or a folder above it, not a class",
        "up": "a link back to the dataset folder or a folder above it, not a class",
        "round_a": "a link that leads round in a circle, not a class",
        "round_b": "a link that leads round in a circle, not a class",
    }
    assert scan_class_folders(data).labels == ["basophil", "eosinophil", "monocyte"]  # as training sees it


def test_a_folder_holding_only_a_link_to_itself_has_no_classes(tmp_path):
    (tmp_path / "loop").mkdir()
    os.symlink("../loop", tmp_path / "loop" / "self")
    with pytest.raises(DatasetError, match="has no class subfolders"):
        scan_class_folders(tmp_path / "loop", PBC8)


@needs_pbc8
def test_evaluate_scores_a_folder_with_a_link_to_itself_and_says_it_passed_it_over(tmp_path, capsys):
    from hqnn_desktop.cli import main

    data = looped(tmp_path)
    out = tmp_path / "x.json"
    assert main(["evaluate", str(data), "--pack", "pbc8", "--models", "hqnn", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n_images"] == 6
    assert {os.path.basename(p["path"]) for p in report["passed_over"]} == {"self", "up", "round_a", "round_b"}
    assert "not classes of the model" not in capsys.readouterr().err


def test_train_names_the_training_folder_for_a_validation_folder_of_other_classes(tmp_path, capsys):
    from hqnn_desktop.cli import main

    train = labelled(tmp_path / "lab2", ["basophil", "platelet"])
    val = labelled(tmp_path / "val_small", ["basophil", "eosinophil"])
    assert main(["train", str(train), "--val-dir", str(val), "--name", "t", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert f"not classes of the training folder {train}: 'eosinophil'." in err and "meant" not in err
