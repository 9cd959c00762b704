"""The command line's guards: a slip in a command is refused in words before it can cost data or work.

Each test reproduces a case of the CLI QA pass: folders deleted by ``train --out``
or ``--name ""``, images overwritten by ``--out``, reports lost after the work,
damaged cards, mistyped commands, unchecked numbers, one-class "perfect" packs,
silent empty results, junk hardware runs, and tracebacks on Ctrl+C.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hqnn_desktop import cli
from hqnn_desktop.cli import main
from hqnn_desktop.core.build import PackRecipe, train_pack
from hqnn_desktop.core.configs import AdaptConfig, HeadConfig
from hqnn_desktop.core.packs import (
    PackError,
    check_pack_destination,
    check_pack_name,
    read_card,
    resolve_pack,
    save_pack,
    scan_packs,
    user_packs_dir,
)
from hqnn_desktop.core.paths import data_dir

from .conftest import BUNDLED, REPO, SAMPLES, make_dataset

needs_pbc8 = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")
A_CELL = next((SAMPLES / "pbc8" / "neutrophil").glob("*.jpg"))


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _no_work(monkeypatch) -> None:
    """Make loading a pack fail the test: the checks under test must come before any work."""
    def forbidden(*_args):
        raise AssertionError("the command started working before checking its arguments")

    monkeypatch.setattr(cli, "_load_pack", forbidden)


# 1 -------------------------------------------------------------------------------------------------


def test_train_out_must_be_a_pack_or_new_and_outside_the_data(tiny_dataset, tmp_path, capsys):
    train, val = tiny_dataset
    victim = tmp_path / "thesis"
    (victim / "sub").mkdir(parents=True)
    (victim / "thesis.txt").write_text("four years of work")
    before = _tree(victim)
    rc = main(["train", str(train), "--val-dir", str(val), "--name", "t", "--out", str(victim)])
    assert rc == 2 and "not a model pack" in capsys.readouterr().err
    assert _tree(victim) == before and (victim / "sub").is_dir()
    with pytest.raises(PackError, match="would delete them"):  # the core refuses too, whoever calls it:
        train_pack(PackRecipe(train_dir=str(train), name="t", val_dir=str(val)), victim)  # before training
    with pytest.raises(PackError, match="would delete them"):
        save_pack(victim, {}, None, {})
    assert _tree(victim) == before

    data_before = _tree(train)
    for out, message in ((train, "not a model pack"), (train / "new-pack", "overlaps the images")):
        assert main(["train", str(train), "--val-dir", str(val), "--name", "t", "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert _tree(train) == data_before
    holder = tmp_path / "old-pack"  # a pack folder in which the user keeps the images
    shutil.copytree(val, holder / "val")
    shutil.copy(BUNDLED / "bci4" / "card.json", holder / "card.json")
    with pytest.raises(PackError, match="overlaps the images"):
        check_pack_destination(holder, (holder / "val",))

    empty = tmp_path / "empty"
    empty.mkdir()
    check_pack_destination(empty)  # an empty folder holds nothing to lose
    check_pack_destination(BUNDLED / "pbc8")  # a pack is replaced by its new version
    (tmp_path / "file").write_text("x")
    with pytest.raises(PackError, match="is a file"):
        check_pack_destination(tmp_path / "file")
    (tmp_path / "linked").symlink_to(empty)
    with pytest.raises(PackError, match="is a link to another folder"):
        check_pack_destination(tmp_path / "linked")
    under_a_file = tmp_path / "file" / "new" / "pack"  # found at the end, after training, until now
    assert main(["train", str(train), "--val-dir", str(val), "--name", "t", "--out", str(under_a_file)]) == 2
    assert "cannot be saved" in capsys.readouterr().err and (tmp_path / "file").read_text() == "x"
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PackError, match="no permission to write"):
            check_pack_destination(locked / "pack")


# 2 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "  ", ".", "..", "../x", "a/b", "a\\b", ".hidden", "x" * 65, "-x", "x."])
def test_bad_pack_names_are_refused(name):
    with pytest.raises(PackError, match="name"):
        check_pack_name(name)


def test_train_name_cannot_reach_the_packs_folder_or_outside_it(tiny_dataset, capsys):
    train, val = tiny_dataset
    packs = user_packs_dir()
    (packs / "mine").mkdir(parents=True)
    (packs / "mine" / "card.json").write_text("{}")
    (packs / "README_keep.txt").write_text("keep")
    before = _tree(packs.parent)
    for name in ("", "..", "../x"):
        assert main(["train", str(train), "--val-dir", str(val), "--name", name]) == 2
        assert "pack name" in capsys.readouterr().err or name == ""
    assert _tree(packs.parent) == before
    assert check_pack_name("my pack_2.v1") == "my pack_2.v1"


# 3 -------------------------------------------------------------------------------------------------


def test_out_never_replaces_an_input_or_an_image(tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch)
    image = tmp_path / "cell.jpg"
    shutil.copy(A_CELL, image)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image, but an input")
    labelled = tmp_path / "labelled"
    (labelled / "neutrophil").mkdir(parents=True)
    shutil.copy(A_CELL, labelled / "neutrophil" / "a.jpg")
    before = _tree(tmp_path)
    cases = [
        (["classify", str(image), "--out", str(image)], "one of the inputs"),
        (["classify", str(notes), "--out", str(notes)], "one of the inputs"),
        (["classify", str(image), "--out", str(tmp_path / "b.jpg")], "named like an image"),
        (["classify", str(image), "--out", str(tmp_path / "photo.HEIC")], "named like an image"),
        (["evaluate", str(labelled), "--pack", "pbc8", "--out", str(labelled / "neutrophil" / "a.jpg")],
         "named like an image"),
        (["evaluate", str(labelled), "--pack", "pbc8", "--out", str(tmp_path / "ev6.csv")],
         "is named as a CSV file, but the results are a JSON file; give a name such as ev6.json"),
        (["classify", str(image), "--out", str(tmp_path / "r.JSON")],
         "is named as a JSON file, but the results are a CSV file; give a name such as r.csv"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert _tree(tmp_path) == before


# 4 -------------------------------------------------------------------------------------------------


def test_out_is_checked_before_the_work(tmp_path, monkeypatch, capsys):
    from hqnn_desktop.hardware.jobs import JobStore

    _no_work(monkeypatch)
    (tmp_path / "a_file").write_text("x")
    labelled = tmp_path / "labelled"
    (labelled / "neutrophil").mkdir(parents=True)
    shutil.copy(A_CELL, labelled / "neutrophil" / "a.jpg")
    for out, message in ((tmp_path, "is a folder"), (f"{tmp_path}/new/", "is a folder"),
                         (tmp_path / "a_file" / "r.json", "is a file, not a folder"), ("", "needs a file name")):
        for argv in (["evaluate", str(labelled), "--pack", "pbc8"],
                     ["hardware", "--pack", "pbc8", "--backend", "aer_simulator", "--input", str(A_CELL)],
                     ["hardware-jobs", "fetch", "run1"]):
            assert main([*argv, "--out", str(out)]) == 2, (argv, out)
            assert message in capsys.readouterr().err
    assert JobStore().all() == []  # no hardware run was recorded
    (tmp_path / "r.csv.partial").mkdir()
    for out, message in ((tmp_path / ("x" * 252 + ".csv"), "file name is too long"),
                         (tmp_path / "r.csv", "which is a folder")):
        assert main(["classify", str(A_CELL), "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    monkeypatch.undo()  # evaluate reads the pack first
    assert main(["evaluate", str(tmp_path / "a_file"), "--pack", "pbc8", "--out", str(tmp_path / "e.json")]) != 0
    assert "a_file is a file; a labelled dataset is a folder" in capsys.readouterr().err


# 5 -------------------------------------------------------------------------------------------------


def test_models_must_be_named_once(tmp_path, capsys):
    for models, message in (("hqnn,hqnn", "named more than once"), ("hqnn, HQNN", "named more than once"),
                            ("", "at least one model"), (",", "at least one model"), ("hqnn,magic", "magic")):
        for command in (["classify", str(A_CELL)], ["evaluate", str(SAMPLES / "pbc8"), "--pack", "pbc8"]):
            with pytest.raises(SystemExit) as exc:
                main([*command, "--models", models, "--out", str(tmp_path / "r.csv")])
            assert exc.value.code == 2 and message in capsys.readouterr().err
    assert cli._parse_models("Baseline, hqnn") == ("baseline", "hqnn")


# 6 -------------------------------------------------------------------------------------------------


def test_a_backup_copy_of_a_pack_is_never_taken_for_the_pack(tmp_path, capsys):
    """A copy keeps its card's name: the folder the user named wins, and two cards of one name with
    neither folder so named are ambiguous rather than settled by folder order."""
    packs = user_packs_dir()
    shutil.copytree(BUNDLED / "bci4", packs / "mine")
    for copy in ("mine-old", "zz-mine-2025"):
        shutil.copytree(packs / "mine", packs / copy)
    card = json.loads((packs / "mine" / "card.json").read_text())
    (packs / "mine" / "card.json").write_text(json.dumps({**card, "name": "mine"}))
    assert resolve_pack("mine") == packs / "mine"
    assert resolve_pack("bci4") == BUNDLED / "bci4"  # the bundled folder of that name
    for copy in ("mine-old", "zz-mine-2025"):
        data = json.loads((packs / copy / "card.json").read_text())
        (packs / copy / "card.json").write_text(json.dumps({**data, "name": "cells"}))
    with pytest.raises(PackError, match="Several packs are named 'cells'.*give the pack's folder"):
        resolve_pack("cells")
    assert main(["classify", str(A_CELL), "--pack", "cells", "--out", str(tmp_path / "r.csv")]) == 2
    assert "Several packs" in capsys.readouterr().err and not (tmp_path / "r.csv").exists()
    assert resolve_pack("zz-mine-2025") == packs / "zz-mine-2025"


@needs_pbc8
def test_a_data_folder_named_like_a_pack_is_not_taken_for_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SAMPLES / "pbc8", tmp_path / "pbc8")  # the user's images, named like the pack
    assert resolve_pack("pbc8") == BUNDLED / "pbc8"
    with pytest.raises(PackError, match="not a model pack"):
        resolve_pack("./pbc8")  # written as a path: the folder is meant, and it is no pack
    with pytest.raises(PackError) as exc:
        resolve_pack("pbc9")
    assert "No model pack named 'pbc9'" in str(exc.value) and "bci4, pbc8" in str(exc.value)
    shutil.copy(BUNDLED / "bci4" / "card.json", tmp_path / "card.json")
    assert resolve_pack("card.json") == Path(".")  # naming the card names its pack
    out = tmp_path / "r.csv"
    assert main(["classify", "pbc8", "--pack", "pbc8", "--models", "hqnn", "--out", str(out)]) == 0
    assert out.read_text().count("\n") == 1 + len(list((tmp_path / "pbc8").rglob("*.jpg")))


# 7 -------------------------------------------------------------------------------------------------


DAMAGES = {
    "labels_int": ("labels", 4),
    "labels_text": ("labels", "abcd"),
    "labels_numbers": ("labels", [1, 2, 3, 4]),
    "labels_twice": ("labels", ["eosinophil", "Eosinophil", "monocyte", "neutrophil"]),
    "labels_one": ("labels", ["eosinophil"]),
    "files_list": ("files", ["heads.safetensors"]),
    "files_text": ("files", {"heads.safetensors": "0" * 64}),
    "models_list": ("models", ["hqnn"]),
    "input_size_text": ("input_size", "big"),
    "input_size_tiny": ("input_size", 8),
    "qubits_huge": ("n_qubits", 40),
    "layers_bool": ("layers", True),
    "preprocessing_text": ("preprocessing", "stretch"),
    "crop_unknown": ("preprocessing", {"crop": {"kind": "nucleus"}}),
    "crop_side_huge": ("preprocessing", {"crop": {"kind": "stained_cell", "side": 3}}),
    "crop_side_text": ("preprocessing", {"crop": {"kind": "stained_cell", "side": "wide"}}),
    "circuit_empty": ("circuit", None),
    "crop_empty": ("preprocessing", {"crop": None}),
    "crop_misspelt": ("preprocessing", {"crop": {"kind": "stained_cell", "side": 0.6, "sid": 0.3}}),
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_card_fields_of_the_wrong_kind_are_refused_in_words(case, tmp_path, capsys):
    key, value = DAMAGES[case]
    pack = user_packs_dir() / case
    shutil.copytree(BUNDLED / "bci4", pack)
    card = json.loads((pack / "card.json").read_text())
    card[key] = value
    (pack / "card.json").write_text(json.dumps(card))
    with pytest.raises(PackError, match=f"The pack {case}'s model card .* is damaged: its "):
        read_card(pack)
    assert main(["classify", str(A_CELL), "--pack", case, "--out", str(tmp_path / "r.csv")]) == 1
    err = capsys.readouterr().err
    assert "is damaged" in err and "Traceback" not in err and not (tmp_path / "r.csv").exists()


def test_packs_lists_damaged_packs_each_on_a_line(capsys):
    for name, card in (("broken", {"name": "broken", "labels": 4}), ("wrongtype", {**json.loads(
            (BUNDLED / "bci4" / "card.json").read_text()), "name": "wrongtype", "labels": 4})):
        (user_packs_dir() / name).mkdir(parents=True)
        (user_packs_dir() / name / "card.json").write_text(json.dumps(card))
    damaged = scan_packs()[1]
    assert {d.path.name for d in damaged} == {"broken", "wrongtype"}
    assert main(["packs"]) == 0
    out = capsys.readouterr().out
    assert "bci4  [bundled]" in out
    for name in ("broken", "wrongtype"):
        assert f"{name}  [user]" in out
    assert out.count("damaged, cannot be used: ") == 2 and "lacks" in out and "labels must be a list" in out


def test_packs_checks_the_weights_too(capsys):
    """A pack whose card is fine but whose weights were cut short or changed is listed as damaged."""
    for name in ("cut", "changed"):
        shutil.copytree(BUNDLED / "bci4", user_packs_dir() / name)
        card = json.loads((user_packs_dir() / name / "card.json").read_text())
        (user_packs_dir() / name / "card.json").write_text(json.dumps({**card, "name": name}))
    heads = user_packs_dir() / "cut" / "heads.safetensors"
    heads.write_bytes(heads.read_bytes()[:1000])
    changed = user_packs_dir() / "changed" / "heads.safetensors"
    data = bytearray(changed.read_bytes())
    data[-3] ^= 0xFF
    changed.write_bytes(bytes(data))
    assert {d.path.name for d in scan_packs()[1]} == set()  # the window's quick listing reads cards only
    assert main(["packs"]) == 0
    out = capsys.readouterr().out
    assert "heads.safetensors is 1,000 bytes instead of the" in out and "cut short by an interrupted copy" in out
    assert "heads.safetensors does not match the checksum in its model card" in out
    assert out.count("Restore the pack folder from a copy or train it again") == 2


# 8 -------------------------------------------------------------------------------------------------


def test_a_mistyped_command_is_refused_and_paths_still_open_the_window(tmp_path, monkeypatch, capsys):
    opened = []
    monkeypatch.setattr(cli, "_start_gui", lambda paths, pack=None: opened.append(paths) or 0)
    monkeypatch.chdir(tmp_path)
    for argv, message in ((["clasify", "corpus", "--out", "x.csv"], "did you mean 'classify'"),
                          (["evalute"], "did you mean 'evaluate'"), (["hello"], "unknown command 'hello'"),
                          ([str(A_CELL), "--out", "x.csv"], "--out is an option of a command"),
                          (["missing.jpg", "--pack", "pbc8"], "--pack is an option of a command")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err, argv
    assert opened == []
    (tmp_path / "clasify").mkdir()  # an existing folder is a folder, whatever its name
    for argv in ([], [str(A_CELL)], ["missing.jpg"], ["folder/missing"], ["clasify"]):
        assert main(argv) == 0
    assert opened == [[], [str(A_CELL)], ["missing.jpg"], ["folder/missing"], ["clasify"]]


def test_the_window_takes_a_pack_before_the_images(monkeypatch, capsys):
    opened = []
    monkeypatch.setattr(cli, "_start_gui", lambda paths, pack=None: opened.append((paths, pack)) or 0)
    assert main(["--pack", "bci4", str(A_CELL)]) == 0 and main(["--pack=pbc8"]) == 0
    assert opened == [([str(A_CELL)], "bci4"), ([], "pbc8")]
    with pytest.raises(SystemExit) as exc:
        main(["--pack", "pbc8", "classify", str(A_CELL)])
    assert exc.value.code == 2 and "put --pack after the command" in capsys.readouterr().err


# 9 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option,value", [
    ("--qubits", "-1"), ("--qubits", "0"), ("--qubits", "1"), ("--qubits", "13"), ("--qubits", "x"),
    ("--layers", "0"), ("--batch-size", "0"), ("--input-size", "8"), ("--input-size", "5000"),
    ("--lr", "nan"), ("--lr", "-0.1"), ("--lr", "inf"), ("--head-epochs", "0"), ("--head-epochs", "-1"),
    ("--epochs", "0"), ("--val-fraction", "0"), ("--val-fraction", "1.5"), ("--contrastive-weight", "-1"),
    ("--fine-tune-per-model-epochs", "0"), ("--fine-tune-per-model-lr", "0"), ("--seed", "-3"),
    ("--cell-window", "0"), ("--cell-window", "1.5"), ("--cell-window", "wide"),
])
def test_train_numbers_are_checked_before_any_image_is_read(option, value, tiny_dataset, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", str(tiny_dataset[0]), "--name", "t", option, value])
    assert exc.value.code == 2
    assert f"argument {option}: " in capsys.readouterr().err


def test_train_device_and_backbone_are_checked_before_any_image_is_read(tiny_dataset, tmp_path, monkeypatch,
                                                                        capsys):
    import torch

    from hqnn_desktop.core import build

    monkeypatch.setattr(build, "train_pack", lambda *a, **k: pytest.fail("training started"))
    base = ["train", str(tiny_dataset[0]), "--name", "t", "--out", str(tmp_path / "p")]
    assert main([*base, "--device", "foo"]) == 2
    assert "--device foo is not a device" in capsys.readouterr().err
    assert main([*base, "--device", "cuda:64"]) == 2
    err = capsys.readouterr().err
    assert ("no CUDA GPU" if not torch.cuda.is_available() else "there is no GPU number 64") in err
    monkeypatch.setenv("HQNN_RESNET18_WEIGHTS", str(tmp_path / "missing.pth"))
    assert main([*base, "--backbone", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert "HQNN_RESNET18_WEIGHTS points to a missing file" in err and "Traceback" not in err


# 10 ------------------------------------------------------------------------------------------------


def test_training_needs_every_class_usable_on_both_sides(tmp_path, monkeypatch, capsys):
    from hqnn_desktop.core import build

    monkeypatch.setattr(build, "extract_features", lambda *a, **k: pytest.fail("training went on"))
    one = make_dataset(tmp_path / "one", 8, 0, names=("basophil",))
    two = make_dataset(tmp_path / "two", 8, 0, names=("alpha", "beta"))
    val_alpha = make_dataset(tmp_path / "val_alpha", 4, 1, names=("alpha",))
    (tmp_path / "val_alpha" / "beta").mkdir()
    broken = make_dataset(tmp_path / "broken", 8, 0, names=("alpha", "beta"))
    for p in (broken / "beta").iterdir():
        p.write_bytes(b"not a picture")
    cases = [([str(one)], "at least two classes, but the dataset has only basophil"),
             ([str(two), "--val-dir", str(val_alpha)], "No usable image of beta is in the validation images"),
             ([str(broken), "--val-dir", str(two)], "No usable image of beta is in the training images")]
    for args, message in cases:
        assert main(["train", *args, "--name", "t", "--out", str(tmp_path / "pack"), "--input-size", "32"]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "pack").exists()


# 11 ------------------------------------------------------------------------------------------------


@needs_pbc8
def test_evaluate_says_when_no_image_could_be_used(tmp_path, capsys):
    bad = tmp_path / "allbad" / "basophil"
    bad.mkdir(parents=True)
    (bad / "a.jpg").write_text("text saved as a picture")
    (bad / "b.jpg").write_bytes(b"")
    out = tmp_path / "r.json"
    assert main(["evaluate", str(tmp_path / "allbad"), "--pack", "pbc8", "--models", "hqnn", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "none of the 2 images could be used" in err and "accuracy" not in err
    assert len(json.loads(out.read_text())["errors"]) == 2
    shutil.copy(A_CELL, tmp_path / "allbad" / "basophil" / "c.jpg")
    assert main(["evaluate", str(tmp_path / "allbad"), "--models", "hqnn", "--out", str(out)]) == 0  # pbc8 by default
    assert "3 images, 2 not usable" in capsys.readouterr().err


# 12 ------------------------------------------------------------------------------------------------


def test_training_defaults_have_one_source_the_protocol(qtbot, capsys):
    from hqnn_desktop.gui.training_tab import TrainingTab

    chosen = json.loads((REPO / "training" / "results" / "pbc8.json").read_text())["chosen"]
    heads = HeadConfig()
    assert (heads.n_qubits, heads.layers, heads.epochs) == (chosen["n_qubits"], chosen["layers"], chosen["epochs"])
    args = cli.build_parser().parse_args(["train", "data", "--name", "p"])
    assert (args.qubits, args.layers, args.head_epochs, args.lr, args.batch_size, args.seed) == (
        heads.n_qubits, heads.layers, heads.epochs, heads.lr, heads.batch_size, heads.seed)
    assert (args.epochs, args.input_size) == (AdaptConfig.epochs, AdaptConfig.input_size)
    assert args.backbone is None  # resolved when training: AdaptConfig's, or the --start-from pack's
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert f"default: {AdaptConfig.backbone}, or the --start-from pack's" in " ".join(capsys.readouterr().out.split())
    tab = TrainingTab()
    qtbot.addWidget(tab)
    assert (tab.qubits.value(), tab.layers.value(), tab.head_epochs.value(), tab.batch.value()) == (
        heads.n_qubits, heads.layers, heads.epochs, heads.batch_size)
    assert tab.epochs.value() == AdaptConfig.epochs and tab.lr.value() == pytest.approx(heads.lr)


# 13 ------------------------------------------------------------------------------------------------


@needs_pbc8
def test_classify_reports_unreadable_formats_and_finding_nothing(tmp_path, capsys):
    folder = tmp_path / "phone"
    folder.mkdir()
    (folder / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    (folder / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / "scan.czi").write_bytes(b"ZISRAWFILE" + bytes(100))
    (folder / "notes.txt").write_text("not an image: skipped")
    shutil.copy(A_CELL, folder / "cell.jpg")
    out = tmp_path / "r.csv"
    assert main(["classify", str(folder), "--pack", "pbc8", "--models", "hqnn", "--out", str(out)]) == 0
    rows = {Path(line.split(",")[0]).name: line for line in out.read_text().splitlines()[1:]}
    assert set(rows) == {"IMG_0001.HEIC", "drawing.svg", "scan.czi", "cell.jpg"}
    assert "HEIC" in rows["IMG_0001.HEIC"] and "SVG" in rows["drawing.svg"] and ".czi file" in rows["scan.czi"]
    assert "4 images, 3 not usable" in capsys.readouterr().err

    empty, texts = tmp_path / "empty", tmp_path / "texts"
    empty.mkdir()
    texts.mkdir()
    (texts / "a.txt").write_text("x")
    assert main(["classify", str(empty), str(texts), "--pack", "pbc8", "--out", str(tmp_path / "none.csv")]) == 1
    err = capsys.readouterr().err
    assert f"no images found in {empty}, {texts}" in err and not (tmp_path / "none.csv").exists()


# 14 ------------------------------------------------------------------------------------------------


@needs_pbc8
def test_hardware_checks_inputs_and_backend_before_recording_a_run(tmp_path, monkeypatch, capsys):
    from hqnn_desktop.hardware.jobs import JobStore
    from hqnn_desktop.hardware.rerun import BackendError, check_backend_name

    (tmp_path / "empty").mkdir()
    (tmp_path / "blank.jpg").write_bytes(b"")
    base = ["hardware", "--pack", "pbc8", "--out", str(tmp_path / "r.json")]
    for argv, rc, message in (
            (["--backend", "aer_simulator", "--input", str(tmp_path / "nowhere")], 2, "not found"),
            (["--backend", "aer_simulator", "--input", str(tmp_path / "empty")], 2, "No images found"),
            (["--backend", "aer_simulater", "--input", str(A_CELL)], 2, "Did you mean aer_simulator?"),
            (["--backend", "fake_brisbain", "--input", str(A_CELL)], 2, "Unknown backend 'fake_brisbain'"),
            (["--backend", "aer_simulator", "--input", str(tmp_path / "blank.jpg")], 1, "No image could be used")):
        assert main([*base, *argv]) == rc, argv
        assert message in capsys.readouterr().err
    assert JobStore().all() == [] and not (tmp_path / "r.json").exists()
    for name in ("aer_simulator", "fake_brisbane", "ibm_torino"):
        check_backend_name(name)
    with pytest.raises(BackendError, match="fake_fez"):
        check_backend_name("ibm-torino")


# 15 ------------------------------------------------------------------------------------------------


def test_saving_an_api_key_with_no_input_is_a_usage_error(monkeypatch, capsys):
    import io

    for given in ("", "   \n"):  # the input ended, or only spaces were typed
        monkeypatch.setattr("sys.stdin", io.StringIO(given))
        assert main(["hardware-account", "save"]) == 2
        err = capsys.readouterr().err
        assert "No API key was typed" in err and "Traceback" not in err


# 16 ------------------------------------------------------------------------------------------------


def test_ctrl_c_while_starting_ends_quietly_with_130(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["classify", "x", "--out", "y.csv"]) == 130
    assert capsys.readouterr().err.strip() == "Interrupted."


def test_help_and_argument_errors_do_not_load_torch():
    code = ("import sys\nfrom hqnn_desktop.cli import build_parser\n"
            "build_parser().parse_args(['train', 'data', '--name', 'p'])\n"
            "build_parser().format_help()\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr



def test_version_is_the_installed_one(capsys):
    from importlib.metadata import version

    from hqnn_desktop.gui.main_window import MainWindow

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"hqnn-desktop {version('hqnn-desktop')}"
    about = MainWindow.about_text()
    assert version("hqnn-desktop") in about and "not for diagnosis" in about
    assert str(data_dir()) in about  # where packs and reviews are kept, for a bug report


# 17 (second CLI QA pass) ---------------------------------------------------------------------------


def test_out_that_is_a_pipe_a_dash_or_a_refusing_disk_is_refused_and_a_link_is_followed(tmp_path, monkeypatch,
                                                                                         capsys):
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    _no_work(monkeypatch)
    for out, message in ((pipe, "not an ordinary file"), ("-", "give --out a name such as results.csv"),
                         ("/proc/hqnn-test/r.csv", "does not take new files")):
        assert main(["classify", str(A_CELL), "--out", str(out)]) == 2, out
        assert message in capsys.readouterr().err
    assert pipe.is_fifo()
    monkeypatch.undo()
    if not (BUNDLED / "pbc8" / "card.json").exists():
        return
    target = tmp_path / "kept" / "results.csv"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert main(["classify", str(A_CELL), "--models", "hqnn", "--out", str(link)]) == 0
    assert link.is_symlink() and target.read_text().startswith("path,model,label")


def test_a_disk_that_fills_up_during_classify_leaves_complete_rows_and_says_where(tmp_path):
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"  # a write past the limit then fails like a full disk
        "resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))\n"
        "from hqnn_desktop.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    out = tmp_path / "r.csv"
    done = subprocess.run([sys.executable, "-c", script, "classify", str(SAMPLES / "pbc8"), "--out", str(out)],
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    partial = out.with_name("r.csv.partial")
    assert "the rows of the" in done.stderr and str(partial) in done.stderr and not out.exists()
    text = partial.read_text()
    assert text.endswith("\n")
    rows = list(csv.reader(text.splitlines()))
    assert len(rows) > 3 and {len(r) for r in rows} == {len(rows[0])}


@needs_pbc8
def test_packs_trained_with_fewer_models_are_used_with_those(tmp_path, capsys):
    pack = tmp_path / "two-models"
    shutil.copytree(BUNDLED / "pbc8", pack)
    card = read_card(pack)
    del card["models"]["classical"]
    (pack / "card.json").write_text("\ufeff" + json.dumps(card), encoding="utf-8")  # as Notepad saves it
    out = tmp_path / "r.csv"
    assert main(["classify", str(A_CELL), "--pack", str(pack), "--out", str(out)]) == 0
    assert [r.split(",")[1] for r in out.read_text().splitlines()[1:]] == ["hqnn", "baseline"]
    assert main(["classify", str(A_CELL), "--pack", str(pack), "--models", "classical", "--out", str(out)]) == 2
    assert ("has no classical model (it was trained with hqnn, baseline only); give --models hqnn,baseline"
            in capsys.readouterr().err)


def test_train_keeps_existing_and_bundled_packs_and_separate_validation(tiny_dataset, tmp_path, monkeypatch,
                                                                        capsys):
    train, val = tiny_dataset
    mine = user_packs_dir() / "mine"
    mine.mkdir(parents=True)
    (mine / "card.json").write_text('{"name": "mine"}')
    before = _tree(mine)
    base = ["train", str(train), "--val-dir", str(val), "--input-size", "64", "--head-epochs", "2"]
    for argv, message in (([*base, "--name", "mine"], "add --replace to replace it"),
                          ([*base, "--name", "pbc8"], "comes with the app"),
                          ([*base, "--name", "x", "--out", str(BUNDLED / "x")], "never replaced"),
                          (["train", str(train), "--val-dir", str(train), "--name", "x"], "overlaps the training"),
                          (["train", str(train), "--group-pattern", "zzz", "--name", "x"], "matches none"),
                          (["train", str(train), "--group-pattern", "alpha|beta|gamma", "--name", "x"],
                           "fall in one group")):
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    assert _tree(mine) == before and not (user_packs_dir() / "x").exists()
    with monkeypatch.context() as m:  # such a rate is refused when parsed (tested below): let it through here
        m.setattr(cli, "MAX_LEARNING_RATE", 1e30)
        assert main([*base, "--name", "mine", "--replace", "--lr", "1e30"]) == 1  # diverges: the old pack stays
    assert "no pack was saved" in capsys.readouterr().err and _tree(mine) == before
    assert main([*base, "--name", "mine", "--replace"]) == 0
    assert read_card(mine)["labels"] == ["alpha", "beta", "gamma"]


def test_a_pack_that_cannot_be_written_is_reported_in_words(tmp_path, monkeypatch):
    import safetensors.torch
    import torch
    from safetensors import SafetensorError

    def disk_full(*_args, **_kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(PackError, match=r"could not be saved in .*\(No space left on device \(os error 28\)\)"):
        save_pack(tmp_path / "p", {"models": {}}, torch.nn.Linear(1, 1), {})
    assert list(tmp_path.iterdir()) == []  # no half-written pack or temporary folder left


@needs_pbc8
def test_a_class_folder_with_a_stray_space_is_named_in_quotes_with_the_likely_class(tmp_path, capsys):
    (tmp_path / "smear" / "basophil ").mkdir(parents=True)
    shutil.copy(A_CELL, tmp_path / "smear" / "basophil " / "a.jpg")
    assert main(["evaluate", str(tmp_path / "smear"), "--out", str(tmp_path / "r.json")]) == 2
    assert "not classes of the model: 'basophil ' (meant 'basophil'?)" in capsys.readouterr().err


@needs_pbc8
def test_evaluate_says_which_classes_had_no_image(tmp_path, capsys):
    (tmp_path / "smear" / "neutrophil").mkdir(parents=True)
    shutil.copy(A_CELL, tmp_path / "smear" / "neutrophil" / "a.jpg")
    assert main(["evaluate", str(tmp_path / "smear"), "--models", "hqnn", "--out", str(tmp_path / "r.json")]) == 0
    err = capsys.readouterr().err
    assert "No image of basophil, eosinophil, erythroblast, ig, lymphocyte, monocyte, platelet" in err
    assert "The macro figures average the class with images" in err


@needs_pbc8
def test_classify_says_which_files_in_the_folders_it_passed_over(tmp_path, capsys):
    folder = tmp_path / "smear"
    folder.mkdir()
    shutil.copy(A_CELL, folder / "cell.jpg")
    shutil.copy(A_CELL, folder / "cell-without-extension")
    (folder / "notes.txt").write_text("slide 4")
    (folder / ".DS_Store").write_bytes(b"\0")
    out = tmp_path / "r.csv"
    assert main(["classify", str(folder), "--models", "hqnn", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2
    assert "2 files in the folders were not classified" in capsys.readouterr().err
    (folder / "cell.jpg").unlink()
    assert main(["classify", str(folder), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no images found" in err and "name a file on its own to classify it anyway" in err
    assert main(["classify", str(folder / "cell-without-extension"), "--models", "hqnn", "--out", str(out)]) == 0


def test_a_file_named_like_an_option_gets_a_hint(tmp_path, monkeypatch, capsys):
    from hqnn_desktop.cli import main

    (tmp_path / "-cell.jpg").write_bytes(b"\xff\xd8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["classify", "-cell.jpg", "--out", "r.csv"])
    assert exc.value.code == 2
    assert "write ./-cell.jpg, or put -- before the files" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # the options written after --, where they are file names
        main(["classify", "--", "-cell.jpg", "--out", "r.csv"])
    assert exc.value.code == 2
    assert ("Everything after -- is read as a file name, so --out there is not taken as an option: put the "
            "options before --.") in capsys.readouterr().err


# Audit of absurd numbers, missing models, pack paths and wording ----------------------------------

_LR_RULE = ("must be above 0 and at most 10 (a learning rate is a small step size, such as 0.01; larger ones only "
            "make the training blow up)")
_LAYERS_RULE = ("must be from 1 to 6 (each layer adds its gates to the simulated circuit and to a hardware run's "
                "depth; the bundled packs use 1)")
_WEIGHT_RULE = ("must be from 0 to 100 (it weighs the contrastive term against the classification error, so 0 to 1 "
                "is usual; more only swamps the classification)")


@pytest.mark.parametrize("option,value,rule", [
    ("--lr", "1e39", _LR_RULE),  # beyond a float32: torch failed with a traceback mid-training
    ("--lr", "10.5", _LR_RULE),
    ("--fine-tune-per-model-lr", "1e39", _LR_RULE),
    ("--layers", "2000", _LAYERS_RULE),  # ran for ever
    ("--layers", "7", _LAYERS_RULE),
    ("--contrastive-weight", "1e300", _WEIGHT_RULE),  # failed at training time, blaming the learning rate
    ("--contrastive-weight", "101", _WEIGHT_RULE),
])
def test_absurd_training_numbers_are_refused_when_parsed_in_words(option, value, rule, tiny_dataset, monkeypatch,
                                                                  capsys):
    from hqnn_desktop.core import build

    monkeypatch.setattr(build, "train_pack", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit) as exc:
        main(["train", str(tiny_dataset[0]), "--name", "t", option, value])
    assert exc.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == f"hqnn-desktop train: error: argument {option}: {rule}, not {value}"


def test_the_largest_numbers_allowed_are_accepted_and_layers_match_the_training_tab(qtbot):
    from hqnn_desktop.core.configs import MAX_LAYERS
    from hqnn_desktop.gui.training_tab import TrainingTab

    args = cli.build_parser().parse_args(["train", "data", "--name", "p", "--lr", "10", "--fine-tune-per-model-lr",
                                          "10", "--layers", "6", "--contrastive-weight", "100"])
    assert (args.lr, args.fine_tune_per_model_lr, args.layers, args.contrastive_weight) == (10, 10, 6, 100)
    tab = TrainingTab()
    qtbot.addWidget(tab)
    assert MAX_LAYERS == 6 == tab.layers.maximum() and tab.layers.minimum() == 1


def _pack_without_hqnn(tmp_path: Path) -> Path:
    """A copy of pbc8 as if trained with the baseline only."""
    pack = tmp_path / "onlyb"
    shutil.copytree(BUNDLED / "pbc8", pack)
    card = read_card(pack)
    card["name"] = "onlyb"
    for kind in ("hqnn", "classical"):
        del card["models"][kind]
    (pack / "card.json").write_text(json.dumps(card), encoding="utf-8")
    return pack


@needs_pbc8
def test_a_model_the_pack_lacks_is_a_usage_error_and_hardware_says_why(tmp_path, monkeypatch, capsys):
    from hqnn_desktop.hardware.jobs import JobStore

    monkeypatch.setattr(cli._ProgressLine, "open", False)  # an earlier test's progress line is not this one's
    pack = _pack_without_hqnn(tmp_path)
    out = tmp_path / "o.csv"
    assert main(["classify", str(A_CELL), "--pack", str(pack), "--models", "hqnn", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "hqnn-desktop classify: The pack onlyb has no hqnn model (it was trained with baseline only); give --models "
        "baseline, or leave --models out to use every model it has.\n")
    assert main(["evaluate", str(SAMPLES / "pbc8"), "--pack", str(pack), "--models", "hqnn,classical",
                 "--out", str(tmp_path / "o.json")]) == 2
    assert "The pack onlyb has no hqnn or classical model (it was trained with baseline only)" in (
        capsys.readouterr().err)
    assert main(["hardware", "--pack", str(pack), "--backend", "aer_simulator", "--input", str(A_CELL),
                 "--out", str(tmp_path / "o.json")]) == 2
    assert capsys.readouterr().err == (
        "hqnn-desktop hardware: The pack onlyb has no HQNN model (it was trained with baseline only), so there is "
        "no quantum layer to run on hardware; choose a pack with an HQNN model (see hqnn-desktop packs).\n")
    assert JobStore().all() == [] and not out.exists() and not (tmp_path / "o.json").exists()
    (pack / "heads.safetensors").write_bytes(b"damaged")  # a damaged pack still fails as such (exit 1)
    assert main(["classify", str(A_CELL), "--pack", str(pack), "--models", "baseline", "--out", str(out)]) == 1
    assert "has no" not in capsys.readouterr().err


def test_a_picture_or_file_given_as_the_pack_is_named_as_such(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli._ProgressLine, "open", False)  # an earlier test's progress line is not this one's
    picture = tmp_path / "cell.jpg"
    shutil.copy(A_CELL, picture)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a pack")
    out = str(tmp_path / "o.csv")
    for given, what in ((picture, "a picture"), (notes, "a file")):
        assert main(["classify", str(A_CELL), "--pack", str(given), "--out", out]) == 2
        assert capsys.readouterr().err == (f"hqnn-desktop classify: {given} is {what}, not a model pack: a pack is "
                                           "a folder holding card.json.\n")
    monkeypatch.chdir(tmp_path)
    assert main(["classify", str(A_CELL), "--pack", "cell.jpg", "--out", out]) == 2
    assert ("No model pack named 'cell.jpg' is installed (cell.jpg here is a picture, not a pack folder)."
            in capsys.readouterr().err)


def test_a_grouping_pattern_with_an_unmatched_optional_group_names_a_real_group(tiny_dataset, monkeypatch,
                                                                               capsys):
    from hqnn_desktop.core import build

    monkeypatch.setattr(build, "extract_features", lambda *a, **k: pytest.fail("training went on"))
    assert main(["train", str(tiny_dataset[0]), "--name", "g", "--group-pattern", "^(x)?s", "--input-size",
                 "32"]) == 2
    err = capsys.readouterr().err
    assert "fall in one group (s)" in err and "(None)" not in err


@needs_pbc8
def test_summaries_of_one_image_are_singular(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["classify", str(A_CELL), "--models", "hqnn", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"\n1 image, 0 not usable -> {out}\n" in err and "1 images," not in err
    folder = tmp_path / "one" / "basophil"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_text("text saved as a picture")
    report = tmp_path / "r.json"
    assert main(["evaluate", str(tmp_path / "one"), "--models", "hqnn", "--out", str(report)]) == 1
    assert capsys.readouterr().err.endswith(
        "hqnn-desktop evaluate: the image could not be used, so nothing was scored; the reason is under 'errors' "
        f"in {report}.\n")
    shutil.copy(A_CELL, folder / "a.jpg")
    assert main(["evaluate", str(tmp_path / "one"), "--models", "hqnn", "--out", str(report)]) == 0
    assert f"1 image, 0 not usable -> {report}" in capsys.readouterr().err
    assert main(["packs"]) == 0
    assert "8 qubits x 1 layer\n" in capsys.readouterr().out
