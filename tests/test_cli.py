"""The headless CLI on the shipped samples and bundled packs, as a user on a server runs it."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hqnn_desktop.cli import main

from .conftest import BUNDLED, SAMPLES

PBC = SAMPLES / "pbc8"
needs_pbc8 = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@needs_pbc8
def test_classify_samples_and_bad_files(tmp_path, capsys):
    bad_dir = tmp_path / "mixed"
    bad_dir.mkdir()
    (bad_dir / "empty.jpg").write_bytes(b"")
    (bad_dir / "notes.jpg").write_text("<html>not an image</html>")
    good = next(PBC.glob("neutrophil/*.jpg"))
    (bad_dir / "cut.jpg").write_bytes(good.read_bytes()[:2000])
    out = tmp_path / "out.csv"
    rc = main(["classify", str(PBC), str(bad_dir), "--pack", "pbc8", "--out", str(out)])
    assert rc == 0
    rows = read_csv(out)
    labels = json.loads((BUNDLED / "pbc8" / "card.json").read_text())["labels"]
    assert list(rows[0].keys()) == ["path", "model", "label", "confidence", "error"] + [f"p_{x}" for x in labels]
    n_samples = len(list(PBC.rglob("*.jpg")))
    assert len(rows) == 3 * (n_samples + 3)
    by_path: dict[str, list[dict]] = {}
    for r in rows:
        by_path.setdefault(r["path"], []).append(r)
    assert {r["model"] for r in rows} == {"hqnn", "classical", "baseline"}
    errors = {Path(p).name: rs[0]["error"] for p, rs in by_path.items() if rs[0]["error"]}
    assert set(errors) == {"empty.jpg", "notes.jpg", "cut.jpg"}
    assert "empty" in errors["empty.jpg"] and "truncated" in errors["cut.jpg"]
    correct = total = 0
    for p, rs in by_path.items():
        if Path(p).parent.parent == PBC:
            for r in rs:
                probs = [float(r[f"p_{x}"]) for x in labels]
                assert abs(sum(probs) - 1) < 1e-3 and r["label"] == labels[probs.index(max(probs))]
                total += 1
                correct += r["label"] == Path(p).parent.name
    assert correct / total >= 0.9  # real samples, real pack
    err = capsys.readouterr().err  # not a terminal here: whole progress lines, as a log file needs
    assert "\r" not in err and f"{n_samples + 3}/{n_samples + 3} images (" in err.splitlines()[-2]


@needs_pbc8
def test_classify_says_which_images_to_check_and_names_them_in_a_flags_column_when_asked(tmp_path, capsys):
    """PBC cells shown to the bci4 pack (another laboratory's pictures): the window flags most of them
    in orange; the command line says how many and, with --flags, which."""
    basophils = PBC / "basophil"
    plain, flagged = tmp_path / "plain.csv", tmp_path / "flagged.csv"
    assert main(["classify", str(basophils), "--pack", "bci4", "--out", str(plain)]) == 0
    note = capsys.readouterr().err
    assert "flagged to check (" in note and "unlike training data" in note and "--flags adds a column" in note
    assert "flags" not in read_csv(plain)[0]  # the documented columns, unchanged by default
    assert main(["classify", str(basophils), "--pack", "bci4", "--flags", "--out", str(flagged)]) == 0
    assert "the flags column names them" in capsys.readouterr().err
    rows = read_csv(flagged)
    assert list(rows[0])[-1] == "flags" and [{k: v for k, v in r.items() if k != "flags"} for r in rows] == read_csv(plain)
    assert sum("unlike training data" in r["flags"] for r in rows) >= 3  # at least two of three pictures, x3 models
    assert {r["flags"] for r in rows if r["path"] == rows[0]["path"]} == {rows[0]["flags"]}  # per image


@needs_pbc8
def test_evaluate_samples_report(tmp_path):
    out = tmp_path / "report.json"
    assert main(["evaluate", str(PBC), "--pack", "pbc8", "--out", str(out), "--models", "hqnn,baseline"]) == 0
    report = json.loads(out.read_text())
    assert set(report["models"]) == {"hqnn", "baseline"}
    m = report["models"]["hqnn"]
    assert m["n"] == len(list(PBC.rglob("*.jpg")))
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class", "confusion_matrix", "ece"):
        assert key in m
    assert sum(map(sum, m["confusion_matrix"])) == m["n"]
    assert m["accuracy"] >= 0.9


def test_evaluate_says_when_images_lie_outside_the_class_folders(tmp_path, capsys):
    data = tmp_path / "labelled"
    shutil.copytree(SAMPLES / "bci4" / "monocyte", data / "Monocyte")
    for k, image in enumerate(sorted((SAMPLES / "bci4" / "lymphocyte").iterdir())[:2]):
        shutil.copy(image, data / f"unsorted{k}{image.suffix}")
    assert main(["evaluate", str(data), "--pack", "bci4", "--models", "hqnn", "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["n_images"] == len(list((data / "Monocyte").iterdir()))
    assert f"2 images directly in {data} (outside the class folders) had no label and were not scored" in (
        capsys.readouterr().err)


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["classify", str(PBC), "--pack", "no-such-pack", "--out", str(tmp_path / "x.csv")]) == 2
    assert "No model pack named" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["classify", str(PBC), "--models", "hqnn,magic", "--out", str(tmp_path / "x.csv")])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["classify", str(PBC)])
    assert exc.value.code == 2
    assert main(["classify", str(tmp_path / "missing"), "--out", str(tmp_path / "x.csv")]) == 2


@needs_pbc8
def test_packs_lists_bundled(capsys):
    assert main(["packs"]) == 0
    out = capsys.readouterr().out
    assert "pbc8" in out and "efficientnet_lite0" in out and "macro-F1" in out


@needs_pbc8
def test_packs_says_when_a_pack_centres_on_the_cell(capsys):
    import shutil

    from hqnn_desktop.core.packs import user_packs_dir

    pack = user_packs_dir() / "fields"
    shutil.copytree(BUNDLED / "pbc8", pack)
    card = json.loads((pack / "card.json").read_text())
    card.update(name="fields", preprocessing={**card["preprocessing"],
                                              "crop": {"kind": "stained_cell", "side": 0.5}})
    (pack / "card.json").write_text(json.dumps(card))
    assert main(["packs"]) == 0
    out = capsys.readouterr().out.split("fields  [user]")[1]
    assert "input:    a square of 50% of the picture's shorter side, centred on the stained cell" in out


def test_entry_point_runs(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "hqnn_desktop", "--help"], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 0 and "classify" in proc.stdout


def test_train_command_makes_a_usable_pack(tiny_dataset, tmp_path, capsys):
    from PIL import Image

    train, val = shutil.copytree(tiny_dataset[0], tmp_path / "train"), tiny_dataset[1]
    first_class = min(train.iterdir())
    (first_class / "cut short.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    Image.new("RGB", (64, 64), (230, 230, 230)).save(first_class / "blank.png")
    (first_class / "notes.txt").write_text("stained on Tuesday")
    out = tmp_path / "cli_pack"
    rc = main(["train", str(train), "--val-dir", str(val), "--name", "clitiny", "--out", str(out),
               "--qubits", "3", "--layers", "1", "--head-epochs", "3", "--input-size", "64",
               "--models", "hqnn,baseline", "--batch-size", "16"])
    assert rc == 0
    card = json.loads((out / "card.json").read_text())
    assert card["name"] == "clitiny" and set(card["models"]) == {"hqnn", "baseline"}
    assert card["training"]["start_from"] is None  # the ImageNet weights
    left_out = card["training"]["left_out"]
    assert (left_out["n_unusable"], left_out["n_passed_over"]) == (2, 1)
    assert {Path(e["path"]).name for e in left_out["examples"]} == {"cut short.png", "blank.png", "notes.txt"}
    assert card["training"]["n_train"] + card["training"]["n_val"] == (
        len(list(train.rglob("*.png"))) - 2 + len(list(val.rglob("*.png"))))
    assert ("Left out of training: 2 pictures that could not be used and 1 other item in the folders (for example "
            in capsys.readouterr().err)
    result = tmp_path / "r.csv"
    assert main(["classify", str(val), "--pack", str(out), "--models", "hqnn", "--out", str(result)]) == 0
    assert len(read_csv(result)) == len(list(val.rglob("*.png")))


@needs_pbc8
def test_train_can_start_from_an_installed_packs_backbone(tiny_dataset, tmp_path, capsys):
    import torch

    from hqnn_desktop.core.backbones import load_state_file

    train, val = tiny_dataset
    common = ["train", str(train), "--val-dir", str(val), "--name", "frompbc8", "--out", str(tmp_path / "p"),
              "--qubits", "3", "--layers", "1", "--head-epochs", "2", "--input-size", "64", "--models", "baseline",
              "--batch-size", "16"]
    assert main([*common, "--start-from", "nope"]) == 2  # refused in words, before any image is read
    assert "No model pack named 'nope' is installed. Installed packs: bci4, pbc8." in capsys.readouterr().err
    assert main([*common, "--start-from", "pbc8", "--backbone", "resnet18"]) == 2
    assert ("The pack pbc8 is built on the efficientnet_lite0 backbone, not resnet18: choose efficientnet_lite0 "
            "to start from it.") in capsys.readouterr().err
    assert not (tmp_path / "p").exists()

    assert main([*common, "--start-from", "pbc8"]) == 0
    card = json.loads((tmp_path / "p" / "card.json").read_text())
    pbc8 = json.loads((BUNDLED / "pbc8" / "card.json").read_text())
    assert card["backbone"] == "efficientnet_lite0" and card["training"]["start_from"] == {
        "pack": "pbc8", "backbone_sha256": pbc8["files"]["backbone.safetensors"]["sha256"], "data": pbc8["data"]["name"]}
    new, start = (load_state_file(str(d / "backbone.safetensors")) for d in (tmp_path / "p", BUNDLED / "pbc8"))
    assert new.keys() == start.keys()  # without --fine-tune, pbc8's backbone as it is
    assert all(torch.equal(new[k].float(), start[k].float()) for k in start)


def test_train_warns_about_a_pack_no_better_than_guessing(tmp_path, capsys):
    """Every class holds the same picture, so no model can beat always answering one class: the
    command still writes the pack, and says it is useless, as the Training tab does."""
    picture = next(PBC.rglob("*.jpg"))
    for split, copies in (("train", 8), ("val", 3)):
        for label in ("alpha", "beta", "gamma"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(copies):
                shutil.copy(picture, tmp_path / split / label / f"{i}.jpg")
    rc = main(["train", str(tmp_path / "train"), "--val-dir", str(tmp_path / "val"), "--name", "clisame",
               "--out", str(tmp_path / "p"), "--qubits", "3", "--layers", "1", "--head-epochs", "2",
               "--input-size", "64", "--epochs", "1", "--models", "hqnn,baseline", "--batch-size", "16"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "Scored on the 9 validation images given; trained on 24." in err
    assert ("Warning: its validation figures rest on 9 images (3 of the class with fewest), so they can be far from "
            "what it does on new images" in err)
    assert "On the validation images, HQNN and Baseline do no better than always answering the most common class." in err


def test_train_reports_bad_dataset(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", str(tmp_path / "empty"), "--name", "x"]) == 2
    assert "no class subfolders" in capsys.readouterr().err
    picture = next(PBC.rglob("*.jpg"))
    assert main(["train", str(PBC), "--val-dir", str(tmp_path / "nope"), "--name", "x",
                 "--out", str(tmp_path / "p")]) == 2
    assert f"The validation folder does not exist: {tmp_path / 'nope'}" in capsys.readouterr().err
    assert main(["train", str(picture), "--name", "x", "--out", str(tmp_path / "p")]) == 2
    assert f"{picture} is a picture; the dataset is a folder holding one subfolder per class" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
