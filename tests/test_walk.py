"""Folders copied from a Mac, a Windows share or a photo manager: their tools' files are never
scored or counted, links to other folders are followed, and classify and evaluate agree."""

from __future__ import annotations

import json
import os
import shutil

from hqnn_desktop.core.datasets import scan_class_folders
from hqnn_desktop.core.inputs import iter_image_paths

from .conftest import SAMPLES

BCI = SAMPLES / "bci4"


def copied_folder(tmp_path):
    """``labelled/<class>/`` as a user's copy leaves it: Mac and Windows leftovers, a note, and a
    class folder gathering pictures kept elsewhere through a link."""
    data = tmp_path / "labelled"
    for name in ("monocyte", "lymphocyte"):
        shutil.copytree(BCI / name, data / name)
    elsewhere = tmp_path / "kept_elsewhere"
    shutil.copytree(BCI / "lymphocyte", elsewhere)
    os.symlink(elsewhere, data / "lymphocyte" / "more")
    os.symlink(data, data / "monocyte" / "back_up")  # a link back up the tree: no loop
    (data / "lymphocyte" / "2023").mkdir()
    os.symlink(data / "lymphocyte" / "2023", data / "monocyte" / "lymph_2023")  # into another class
    wrong = next((BCI / "eosinophil").iterdir())
    for hidden in (data / "monocyte" / ".thumbnails", data / "lymphocyte" / ".AppleDouble",
                   data / "__MACOSX" / "monocyte"):
        hidden.mkdir(parents=True)
        shutil.copy(wrong, hidden / "cell.jpeg")
    shutil.copy(wrong, data / "monocyte" / "._cell.jpeg")  # a Mac resource fork beside a picture
    for system in ("Thumbs.db", "desktop.ini", ".DS_Store"):
        (data / "monocyte" / system).write_bytes(b"\0" * 16)
    (data / "lymphocyte" / "notes.txt").write_text("smear 12, stained Tuesday")
    return data


def test_a_copied_folder_scans_to_the_users_pictures_only(tmp_path):
    data = copied_folder(tmp_path)
    files = scan_class_folders(data, ["eosinophil", "lymphocyte", "monocyte", "neutrophil"])
    n_mono, n_lymph = (len(list((BCI / c).iterdir())) for c in ("monocyte", "lymphocyte"))
    assert files.class_counts() == {"eosinophil": 0, "lymphocyte": 2 * n_lymph, "monocyte": n_mono,
                                    "neutrophil": 0}
    assert not any("thumbnails" in str(p) or "AppleDouble" in str(p) or "MACOSX" in str(p) or
                   p.name.startswith("._") for p in files.paths)
    assert [(p.name, why) for p, why in files.skipped] == [("notes.txt", "not a picture's file name")]


def test_classify_walks_the_same_folder_the_same_way(tmp_path):
    data = copied_folder(tmp_path)
    skipped = []
    found = list(iter_image_paths([data], skipped=skipped))
    files = scan_class_folders(data, ["eosinophil", "lymphocyte", "monocyte", "neutrophil"])
    assert sorted(found) == sorted(str(p) for p in files.paths)
    assert [os.path.basename(p) for p in skipped] == ["notes.txt"]  # not Thumbs.db or desktop.ini


def test_evaluate_scores_a_copied_folder_and_names_what_it_passed_over(tmp_path, capsys):
    from hqnn_desktop.cli import main

    data = copied_folder(tmp_path)
    out = tmp_path / "report.json"
    assert main(["evaluate", str(data), "--pack", "bci4", "--models", "hqnn", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    n_mono, n_lymph = (len(list((BCI / c).iterdir())) for c in ("monocyte", "lymphocyte"))
    assert report["n_images"] == n_mono + 2 * n_lymph and report["n_unusable"] == 0
    assert report["passed_over"] == [{"path": str(data / "lymphocyte" / "notes.txt"),
                                      "reason": "not a picture's file name"}]
    assert "1 item in the class folders was not scored (for example notes.txt" in capsys.readouterr().err


def test_a_link_to_a_folder_holding_the_dataset_is_not_followed(tmp_path):
    """``basophil/up -> ../..`` would count every picture beside the dataset as a basophil."""
    data = tmp_path / "labelled"
    shutil.copytree(BCI / "monocyte", data / "monocyte")
    shutil.copytree(BCI / "lymphocyte", tmp_path / "another_study")
    os.symlink(tmp_path, data / "monocyte" / "up")
    files = scan_class_folders(data, ["lymphocyte", "monocyte"])
    assert files.class_counts() == {"lymphocyte": 0, "monocyte": len(list((BCI / "monocyte").iterdir()))}


def test_pictures_linked_into_two_classes_are_left_out_and_linked_twice_into_one_counted_once(tmp_path):
    data = tmp_path / "labelled"
    shutil.copytree(BCI / "monocyte", data / "monocyte")
    shutil.copytree(BCI / "lymphocyte", data / "lymphocyte")
    shared = tmp_path / "unsorted"
    shutil.copytree(BCI / "eosinophil", shared)
    os.symlink(shared, data / "monocyte" / "from unsorted")
    os.symlink(shared, data / "lymphocyte" / "from unsorted")
    twice = tmp_path / "more monocytes"
    shutil.copytree(BCI / "neutrophil", twice)
    os.symlink(twice, data / "monocyte" / "a")
    os.symlink(twice / next(twice.iterdir()).name, data / "monocyte" / "b.jpeg")
    files = scan_class_folders(data, ["lymphocyte", "monocyte"])
    n = {c: len(list((BCI / c).iterdir())) for c in ("monocyte", "lymphocyte", "eosinophil", "neutrophil")}
    assert files.class_counts() == {"lymphocyte": n["lymphocyte"], "monocyte": n["monocyte"] + n["neutrophil"]}
    reasons = [why for _, why in files.skipped]
    assert reasons.count("in two class folders (through a link), so its class is unclear: left out of both") == (
        2 * n["eosinophil"])
    assert sum(why.startswith("the same picture as ") for why in reasons) == 1


def test_a_picture_reached_twice_is_classified_once_and_the_other_name_is_explained(tmp_path, capsys):
    """A link beside the picture it points to, and the same file named twice: one row each, and the
    command says why the second name has none instead of leaving the user to think it was lost."""
    from hqnn_desktop.cli import main
    from hqnn_desktop.core.results import twice_note

    folder = tmp_path / "smear"
    shutil.copytree(BCI / "monocyte", folder)
    first = min(folder.iterdir())
    os.symlink(first, folder / "a_link.jpeg")
    twice: list[tuple[str, str]] = []
    found = list(iter_image_paths([first, folder], twice=twice))
    assert len(found) == len(list((BCI / "monocyte").iterdir()))
    assert twice == [(str(first), str(first)), (str(folder / "a_link.jpeg"), str(first))]
    assert twice_note(twice) == ("1 picture was reached more than once (through a link, or named again) and classified "
                                 f"once, under the first name found (a_link.jpeg is the same file as {first.name}).")
    assert twice_note([(str(first), str(first))]) == (
        "1 picture was reached more than once (through a link, or named again) and classified once, under the first name "
        f"found (for example {first.name}).")
    assert twice_note([]) == ""
    out = tmp_path / "rows.csv"
    assert main(["classify", str(first), str(folder), "--pack", "bci4", "--models", "hqnn", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1 + len(found)
    assert "1 picture was reached more than once" in capsys.readouterr().err
