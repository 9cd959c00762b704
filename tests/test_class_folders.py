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


def _train_val(tmp_path, capsys, train, val) -> tuple[int, str]:
    """``hqnn-desktop train TRAIN --val-dir VAL`` (stopped before any training when refused)."""
    from hqnn_desktop.cli import main

    rc = main(["train", str(train), "--val-dir", str(val), "--name", "t", "--out", str(tmp_path / "p"),
               "--head-epochs", "1", "--qubits", "2", "--input-size", "32", "--models", "baseline"])
    return rc, capsys.readouterr().err


def _list_of(path, folder):
    """A path,label list of every picture of ``folder``'s class folders."""
    rows = [f"{p},{p.parent.name}" for p in sorted(folder.rglob("*.jpg"))]
    path.write_text("path,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["list as training", "list as validation", "linked class folders"])
def test_validation_pictures_that_are_training_pictures_are_refused_however_reached(tmp_path, capsys, kind):
    train = labelled(tmp_path / "train", ["basophil", "eosinophil"])
    if kind == "list as training":
        train, val = _list_of(tmp_path / "same.csv", train), train
    elif kind == "list as validation":
        val = _list_of(tmp_path / "same.csv", train)
    else:
        val = tmp_path / "linked"
        val.mkdir()
        for name in ("basophil", "eosinophil"):
            (val / name).symlink_to(train / name)
    rc, err = _train_val(tmp_path, capsys, train, val)
    assert rc == 2 and "4 validation pictures are also training pictures (for example " in err
    assert "so the models would be scored on images they learnt from" in err and not (tmp_path / "p").exists()


def test_a_hard_linked_picture_counts_once_and_in_two_classes_not_at_all(tmp_path):
    root = labelled(tmp_path / "data", ["basophil", "eosinophil"])
    first = min((root / "basophil").iterdir())
    os.link(first, root / "basophil" / "again.jpg")
    os.link(first, root / "eosinophil" / "claimed.jpg")
    files = scan_class_folders(root)
    assert first not in files.paths and len(files) == 3  # left out of both classes
    reasons = {p.name: why for p, why in files.skipped}
    assert reasons["claimed.jpg"].startswith("in two class folders") and first.name in reasons


def test_classify_takes_a_hard_linked_picture_once(tmp_path):
    from hqnn_desktop.core.inputs import iter_image_paths

    picture = next((SAMPLES / "pbc8" / "basophil").glob("*.jpg"))
    shutil.copy(picture, tmp_path / "a.jpg")
    os.link(tmp_path / "a.jpg", tmp_path / "b.jpg")
    assert [os.path.basename(p) for p in iter_image_paths([tmp_path])] == ["a.jpg"]


def test_a_list_counts_a_repeated_picture_once_and_one_given_two_classes_not_at_all(tmp_path):
    root = labelled(tmp_path / "data", ["basophil", "eosinophil"])
    ba, ba2 = sorted((root / "basophil").iterdir())
    eo = sorted((root / "eosinophil").iterdir())
    rows = [f"{ba},basophil", f"{ba2},basophil", f"{ba2},basophil", f"{eo[0]},eosinophil", f"{eo[1]},eosinophil",
            f"{ba},eosinophil"]
    (tmp_path / "list.csv").write_text("path,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    files = read_manifest(tmp_path / "list.csv")
    assert files.paths == [ba2, *eo] and files.targets == [0, 1, 1]
    two_classes = "listed with two classes, so its class is unclear: left out"
    assert [why for _, why in files.skipped] == [f"the same picture as {ba2}", two_classes, two_classes]


def test_a_list_saved_by_excel_with_capitalised_columns_is_read(tmp_path):
    root = labelled(tmp_path / "data", ["basophil", "eosinophil"])
    rows = [f"{p},{p.parent.name.capitalize()}" for p in sorted(root.rglob("*.jpg"))]
    (tmp_path / "excel.csv").write_bytes(("\ufeff Path ,Label\r\n" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    files = read_manifest(tmp_path / "excel.csv")
    assert files.labels == ["basophil", "eosinophil"] and files.targets == [0, 0, 1, 1]


def test_classification_results_are_not_taken_for_verified_labels(tmp_path):
    (tmp_path / "results.csv").write_text("path,model,label,confidence,error\na.jpg,hqnn,basophil,0.9,\n",
                                          encoding="utf-8")
    with pytest.raises(DatasetError, match=r"holds classification results \(one row per picture and model, labels "
                                           r"the models predicted\), not verified labels"):
        read_manifest(tmp_path / "results.csv")


def test_class_names_written_with_accents_two_ways_match(tmp_path):
    import unicodedata

    for form, root in (("NFD", tmp_path / "mac"), ("NFC", tmp_path / "linux")):
        for name, cells in (("érythroblaste", "erythroblast"), ("éosinophile", "eosinophil")):
            folder = root / unicodedata.normalize(form, name)
            folder.mkdir(parents=True)
            for picture in sorted((SAMPLES / "pbc8" / cells).glob("*.jpg"))[:2]:
                shutil.copy(picture, folder / picture.name)
    mac = scan_class_folders(tmp_path / "mac")
    linux = scan_class_folders(tmp_path / "linux", mac.labels, training_reference(tmp_path / "mac"))
    assert linux.labels == mac.labels == ["éosinophile", "érythroblaste"] and linux.targets == [0, 0, 1, 1]


def test_a_phone_photo_or_microscope_file_in_a_class_folder_is_named_as_such(tmp_path):
    root = labelled(tmp_path / "data", ["basophil", "eosinophil"])
    (root / "basophil" / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic")
    (root / "basophil" / "notes.txt").write_text("stained on Tuesday")
    reasons = {p.name: why for p, why in scan_class_folders(root).skipped}
    assert reasons == {"IMG_0001.HEIC": "a .heic picture, a format that cannot be read here: export it as TIFF, PNG "
                                        "or JPEG first", "notes.txt": "not a picture's file name"}


def test_a_class_with_one_picture_is_too_small_to_split_and_says_so(tmp_path, capsys):
    from hqnn_desktop.cli import main

    root = labelled(tmp_path / "data", ["basophil", "eosinophil"], per_class=3)
    for extra in sorted((root / "basophil").iterdir())[1:]:
        extra.unlink()
    assert main(["train", str(root), "--name", "t", "--out", str(tmp_path / "p")]) == 2
    assert ("basophil has only 1 picture: too few to set some aside for validation. Add pictures of it, or choose "
            "a validation folder.") in capsys.readouterr().err


def test_an_optional_group_that_matched_nothing_is_not_named_none(tmp_path, capsys):
    from hqnn_desktop.cli import main

    root = labelled(tmp_path / "data", ["basophil", "eosinophil"], per_class=3)
    assert main(["train", str(root), "--name", "t", "--out", str(tmp_path / "p"),
                 "--group-pattern", "^(x)?[A-Z]+_"]) == 2
    err = capsys.readouterr().err
    assert "all 3 images of basophil fall in one group (BA_)" in err and "None" not in err


def test_the_validation_split_does_not_change_when_the_dataset_folder_moves(tmp_path):
    from hqnn_desktop.core.datasets import split_validation

    first = labelled(tmp_path / "here", ["basophil", "eosinophil", "neutrophil"], per_class=5)
    moved = shutil.copytree(first, tmp_path / "elsewhere" / "copy")

    def val_names(root):
        _, val = split_validation(scan_class_folders(root), 0.3, seed=0)
        return sorted(p.relative_to(root).as_posix() for p in val.paths)

    assert val_names(first) == val_names(moved) and val_names(first)


def test_corrections_added_to_their_folder_count_each_picture_once_and_their_class_wins(tmp_path):
    """A reviewed picture that is also in the training folder: trained once, under the class the
    user gave it in review, and the other listing is named as left out with the reason."""
    data = tmp_path / "smears"
    for name in ("monocyte", "lymphocyte"):
        shutil.copytree(SAMPLES / "bci4" / name, data / name)
    mono, lymph = (sorted((data / c).iterdir()) for c in ("monocyte", "lymphocyte"))
    manifest = tmp_path / "corrections.csv"
    manifest.write_text(f"path,label\n{mono[0]},lymphocyte\n{lymph[0]},lymphocyte\n")
    folder = scan_class_folders(data)
    both = read_manifest(manifest, folder.labels).plus(folder)
    assert len(both) == len(folder)
    assert both.class_counts() == {"lymphocyte": len(lymph) + 1, "monocyte": len(mono) - 1}
    assert sorted(both.skipped) == [(lymph[0], "in both lists: trained once"),
                                    (mono[0], "in both lists: trained once, as lymphocyte (not monocyte)")]


def test_a_folder_without_pictures_beside_the_classes_is_passed_over_not_refused(tmp_path):
    """A notes or exports folder next to the class folders loses no class: evaluation goes on and
    names it; a folder holding pictures under a name that is no class is still refused."""
    data = tmp_path / "labelled"
    shutil.copytree(SAMPLES / "bci4" / "monocyte", data / "Monocyte")
    (data / "notes").mkdir()
    (data / "notes" / "smear 4.txt").write_text("stained Tuesday")
    (data / "exports" / "empty").mkdir(parents=True)
    files = scan_class_folders(data, ["lymphocyte", "monocyte"])
    assert files.class_counts() == {"lymphocyte": 0, "monocyte": len(list((SAMPLES / "bci4" / "monocyte").iterdir()))}
    assert files.skipped == [(data / "exports", "a folder without pictures, not a class"),
                             (data / "notes", "a folder without pictures, not a class")]
    shutil.copy(next((SAMPLES / "bci4" / "monocyte").iterdir()), data / "exports" / "empty" / "cell.jpeg")
    with pytest.raises(DatasetError, match="'exports'"):
        scan_class_folders(data, ["lymphocyte", "monocyte"])


def test_a_folder_without_pictures_is_no_class_of_a_new_dataset_either(tmp_path):
    data = tmp_path / "smears"
    for name in ("monocyte", "lymphocyte"):
        shutil.copytree(SAMPLES / "bci4" / name, data / name)
    (data / "exports").mkdir()
    (data / "exports" / "counts.csv").write_text("cells,12")
    files = scan_class_folders(data)
    assert files.labels == ["lymphocyte", "monocyte"]
    assert (data / "exports", "a folder without pictures, not a class") in files.skipped
