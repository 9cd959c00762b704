"""Review state, undo/redo, persistence, differential counts and kappa against numbers worked out by hand."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import cohen_kappa_score

from hqnn_desktop.core.corrections import left_out_of_corrections, write_manifest
from hqnn_desktop.core.datasets import DatasetError, read_manifest, scan_dataset
from hqnn_desktop.core.differential import differential, write_differential_csv
from hqnn_desktop.core.inputs import ImageResult
from hqnn_desktop.core.metrics import cohen_kappa
from hqnn_desktop.core.review import (
    Change,
    Review,
    ReviewError,
    folder_only_review_file,
    list_reviews,
    other_pack_reviews,
    review_file,
)
from hqnn_desktop.core.review_report import (
    NOTICE,
    card_summary_lines,
    report_thumbnails,
    summary_lines,
)
from hqnn_desktop.core.suggest import suggest_next

from .conftest import BUNDLED

LABELS = ["a", "b", "c"]
MODELS = ("hqnn", "baseline")


def onehot(k: int, p: float = 0.9) -> np.ndarray:
    v = np.full(3, (1 - p) / 2, np.float32)
    v[k] = p
    return v


@pytest.fixture
def smear(tmp_path):
    """Six cells (predictions per model below) and one unreadable file, in one folder."""
    folder = tmp_path / "smear"
    folder.mkdir()
    preds = [(0, 0), (0, 1), (1, 1), (1, 1), (2, 2), (2, 0)]
    results = []
    for i, (h, b) in enumerate(preds):
        path = folder / f"cell{i}.png"
        Image.new("RGB", (8, 8), (i * 30, 0, 0)).save(path)
        results.append(ImageResult(str(path), proba={"hqnn": onehot(h, 0.4 if i == 5 else 0.9),
                                                     "baseline": onehot(b)}))
    results.append(ImageResult(str(folder / "broken.png"), error="not an image"))
    return folder, results


def paths_of(folder):
    return [str(folder / f"cell{i}.png") for i in range(6)]


def test_counts_agreement_and_kappa_match_a_count_by_hand(smear, tmp_path):
    folder, results = smear
    review = Review.from_results(results, LABELS, MODELS, "toy")
    p = paths_of(folder)
    for path, label in zip(p, ["a", "b", "b", "c", "c"]):
        review.decide([path], label)
    diff = differential(review)
    assert (diff.n_cells, diff.n_verified, diff.n_unusable) == (6, 5, 1)
    rows = {r.label: r for r in diff.rows}
    assert [rows[k].verified for k in LABELS] == [1, 2, 2]
    assert [diff.verified_pct(rows[k]) for k in LABELS] == [20.0, 40.0, 40.0]
    assert [rows[k].pre["hqnn"] for k in LABELS] == [2, 2, 2]
    assert [rows[k].pre["baseline"] for k in LABELS] == [2, 3, 1]
    # HQNN on the verified cells says a a b b c against a b b c c: 3 of 5 agree;
    # chance (1*2 + 2*2 + 2*1) / 25 = 0.32, so kappa = (0.6 - 0.32) / 0.68
    assert diff.agreement["hqnn"] == pytest.approx(0.6)
    assert diff.kappa["hqnn"] == pytest.approx(0.28 / 0.68)
    # the baseline says a b b b c: 4 of 5; chance (1*1 + 2*3 + 2*1) / 25 = 0.36
    assert diff.agreement["baseline"] == pytest.approx(0.8)
    assert diff.kappa["baseline"] == pytest.approx(0.44 / 0.64)
    assert diff.kappa["hqnn"] == pytest.approx(cohen_kappa_score([0, 1, 1, 2, 2], [0, 0, 1, 1, 2]))
    # HQNN put p0, p1 in a and the reviewer kept one; the one verified a was found
    assert (rows["a"].kept["hqnn"], rows["a"].found["hqnn"]) == (0.5, 1.0)
    assert (rows["c"].kept["hqnn"], rows["c"].found["hqnn"]) == (1.0, 0.5)

    out = write_differential_csv(tmp_path / "d.csv", diff)
    with open(out, encoding="utf-8") as fh:
        lines = list(csv.DictReader(fh))
    assert [r["class"] for r in lines] == ["a", "b", "c", "all"]
    assert lines[1]["verified_n"] == "2" and lines[1]["verified_pct"] == "40.00"
    assert lines[1]["baseline_n"] == "3" and lines[1]["baseline_pct"] == "50.00"
    assert float(lines[3]["hqnn_kappa"]) == pytest.approx(0.28 / 0.68, abs=1e-4)
    assert lines[3]["hqnn_kept"] == "0.6000" and lines[0]["hqnn_kappa"] == ""


def test_kappa_edge_cases():
    assert cohen_kappa(np.array([], int), np.array([], int), 3) is None
    assert cohen_kappa(np.array([1, 1]), np.array([1, 1]), 3) == 1.0
    assert cohen_kappa(np.array([0, 1]), np.array([1, 0]), 2) == pytest.approx(-1.0)


def test_undo_redo_and_group_accept_are_single_steps(smear):
    folder, results = smear
    review = Review.from_results(results, LABELS, MODELS, "toy")
    p = paths_of(folder)
    group_a = [c.path for c in review.groups("hqnn")["a"]]
    assert sorted(group_a) == p[:2]
    assert review.accept(group_a, "hqnn") and review.decisions == {p[0]: "a", p[1]: "a"}
    review.decide([p[1]], "b")
    assert review.decide([p[1]], "b") == []  # no change, no step
    assert [c.path for c in review.groups("hqnn")["b"]].count(p[1]) == 1  # shown in its new group
    review.undo()
    assert review.decisions == {p[0]: "a", p[1]: "a"}
    review.undo()
    assert review.decisions == {} and not review.can_undo()
    review.redo()
    review.redo()
    assert review.decisions == {p[0]: "a", p[1]: "b"} and not review.can_redo()
    review.clear([p[0]])
    review.decide([p[2]], "c")
    assert review.decisions == {p[1]: "b", p[2]: "c"}
    review.undo()
    review.decide([p[3]], "a")  # a new step forgets what could be redone
    assert not review.can_redo()
    with pytest.raises(ReviewError, match="not a class"):
        review.decide([p[0]], "z")


def test_every_decision_is_saved_and_restored(smear):
    folder, results = smear
    review = Review.from_results(results, LABELS, MODELS, "toy")
    p = paths_of(folder)
    review.decide(p[:2], "c")
    saved = json.loads(review_file(folder, "toy").read_text())
    assert saved["decisions"] == {p[0]: "c", p[1]: "c"}
    again = Review.from_results(results, LABELS, MODELS, "toy")
    assert again.decisions == review.decisions and again.file == review.file
    alone = Review.load(review.file)
    assert alone.decisions == review.decisions and len(alone.cells) == 6 and alone.unusable
    assert differential(alone).kappa == differential(review).kappa
    [info] = list_reviews()
    assert (info.folder, info.n_cells, info.n_verified, info.pack) == (str(folder), 6, 2, "toy")
    review.file.write_text("{damaged")
    with pytest.raises(ReviewError, match="cannot be read"):
        Review.load(review.file)
    assert list_reviews() == []
    fresh = Review.from_results(results, LABELS, MODELS, "toy")  # the damaged file is set aside
    assert fresh.decisions == {} and review.file.with_suffix(".damaged.json").read_text() == "{damaged"
    for damage in ({"decisions": "x"}, {"updated": 5}, {"cells": ["x"]}):
        fresh.decide(p[:1], "c")
        data = json.loads(fresh.file.read_text())
        fresh.file.write_text(json.dumps({**data, **damage}))
        (fresh.file.parent / "other.json").write_text(json.dumps({**data, "pack": "other"}))
        assert [r.pack for r in list_reviews()] == ["other"]  # one damaged file hides no other
        with pytest.raises(ReviewError, match="damaged"):
            Review.load(fresh.file)
        fresh = Review.from_results(results, LABELS, MODELS, "toy")
        assert fresh.decisions == {}
    backups = sorted(fresh.file.parent.glob(f"{fresh.file.stem}.damaged*.json"))
    assert len(backups) == 4  # "{damaged" and the three above: each damage keeps its own backup
    with pytest.raises(ReviewError, match="nothing to review"):
        Review.from_results(results[-1:], LABELS, MODELS, "toy")


def test_cells_to_check_come_first(smear):
    folder, results = smear
    review = Review.from_results(results, LABELS, MODELS, "toy")
    p = paths_of(folder)
    # p5: models disagree and HQNN is unsure; p1: models disagree; the rest are sure and unanimous
    assert [c.path for c in review.cells[:2]] == [p[5], p[1]]
    assert review.by_path[p[5]].flags == ["models disagree", "low confidence"]
    review.decide([p[5]], "a")
    assert [c.path for c in suggest_next(review, 2)] == [p[1], p[0]]


def test_manifest_of_verified_cells_round_trip(smear, tmp_path):
    folder, results = smear
    review = Review.from_results(results, LABELS, MODELS, "toy")
    with pytest.raises(DatasetError, match="No cell has been verified"):
        write_manifest(review)
    p = paths_of(folder)
    review.decide(p[:3], "b")
    manifest = write_manifest(review)
    files = scan_dataset(manifest, LABELS)
    assert sorted(map(str, files.paths)) == p[:3] and files.class_counts() == {"a": 0, "b": 3, "c": 0}
    # a hand-written manifest: relative paths, a missing file, an unknown class
    own = folder / "mine.csv"
    own.write_text("path,label\ncell0.png,A\ngone.png,b\n", encoding="utf-8")
    files = read_manifest(own)
    assert files.labels == ["a", "b"] and [p.name for p in files.paths] == ["cell0.png"]
    assert files.skipped[0][1] == "file not found"
    own.write_text("path,label\ncell0.png,neutrophil\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="does not know: neutrophil"):
        read_manifest(own, LABELS)
    own.write_text("file,class\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="needs the columns"):
        read_manifest(own)


def test_report_content(smear):
    folder, results = smear
    review = Review.from_results(results, LABELS, MODELS, "toy")
    review.decide([paths_of(folder)[4]], "a")
    thumbs = report_thumbnails(review, "hqnn", per_class=2)
    assert thumbs["a"][0] == paths_of(folder)[4] and all(len(v) <= 2 for v in thumbs.values())
    card = json.loads((BUNDLED / "pbc8" / "card.json").read_text())
    lines = card_summary_lines(card)
    assert lines[0].startswith("Pack: ") and "pbc8" in lines[0]
    assert any(line.startswith("Validation macro-F1: HQNN") for line in lines)
    assert lines[-1].startswith("Intended use:") and "not for diagnosis" in NOTICE


def manifest_rows(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))[1:]


def test_pictures_gone_since_are_left_out_of_report_and_corrections_but_keep_their_decisions(smear, tmp_path):
    folder, results = smear
    p = paths_of(folder)
    review = Review.from_results(results, LABELS, MODELS, "toy")
    for path, label in zip(p[:4], "abbc"):
        review.decide([path], label)
    (folder / "cell0.png").unlink()  # verified, then deleted
    (folder / "cell4.png").rename(folder / "cell4-renamed.png")  # not verified, renamed
    reopened = Review.load(review.file)
    missing = set(reopened.missing_pictures())
    assert missing == {p[0], p[4]}

    # the report counts the four pictures still there and says, apart, what it left out
    diff = differential(reopened, missing)
    assert (diff.n_cells, diff.n_verified, diff.n_unusable, diff.n_missing) == (4, 3, 1, 2)
    rows = {r.label: r for r in diff.rows}
    assert [rows[k].pre["hqnn"] for k in LABELS] == [1, 2, 1]  # p1 | p2 p3 | p5
    assert [rows[k].pre["baseline"] for k in LABELS] == [1, 3, 0]  # p5 | p1 p2 p3
    assert [rows[k].verified for k in LABELS] == [0, 2, 1]
    assert diff.agreement["hqnn"] == pytest.approx(1 / 3)  # says a b b where the reviewer says b b c
    assert summary_lines(diff, "hqnn") == [
        "4 cells, 3 verified, 1 image not usable · pre-classified by the pack toy; thumbnails grouped by HQNN",
        "2 pictures are no longer where they were (moved, renamed or deleted) and are left out of this report."]
    thumbs = report_thumbnails(reopened, "hqnn", missing=missing)
    assert thumbs["a"] == [] and sorted(thumbs["b"]) == [p[1], p[2]] and thumbs["c"] == [p[3], p[5]]
    assert differential(reopened).n_cells == 6  # the review itself still has every cell

    # the corrections list the three verified pictures still there and name the one left out
    left_out: list[str] = []
    manifest = write_manifest(reopened, tmp_path / "corrections.csv", left_out)
    assert sorted(manifest_rows(manifest)) == [[p[1], "b"], [p[2], "b"], [p[3], "c"]]
    assert left_out == [p[0]] and not read_manifest(manifest, LABELS).skipped
    assert left_out_of_corrections(left_out) == (
        "1 verified picture is no longer where it was (moved, renamed or deleted), for example cell0.png, "
        "and is left out of the corrections; its decision stays in the review.")
    assert left_out_of_corrections([]) == ""

    # nothing written is lost: the decision of the deleted picture stays on disk through new decisions
    reopened.decide([p[5]], "a")
    assert Review.load(review.file).decisions == {p[0]: "a", p[1]: "b", p[2]: "b", p[3]: "c", p[5]: "a"}

    # pictures that come back count again, in the report and in the corrections
    (folder / "cell4-renamed.png").rename(folder / "cell4.png")
    one_gone = differential(reopened, set(reopened.missing_pictures()))
    assert (one_gone.n_cells, one_gone.n_missing) == (5, 1)
    assert summary_lines(one_gone, "baseline")[1] == ("1 picture is no longer where it was (moved, renamed or "
                                                       "deleted) and is left out of this report.")
    Image.new("RGB", (8, 8)).save(folder / "cell0.png")
    assert reopened.missing_pictures() == []
    back = differential(reopened, set())
    assert (back.n_cells, back.n_verified, back.n_missing) == (6, 5, 0) and len(summary_lines(back, "hqnn")) == 1
    left_out.clear()
    assert [p[0], "a"] in manifest_rows(write_manifest(reopened, tmp_path / "again.csv", left_out))
    assert left_out == []

    # every verified picture gone: no empty corrections file, and the decisions stay
    for path in p[:4] + p[5:]:
        Path(path).unlink()
    with pytest.raises(DatasetError, match=r"^All 5 verified pictures are no longer where they were \(moved, "
                                           r"renamed or deleted\), so there are no corrections to save; their "
                                           r"decisions stay in the review\.$"):
        write_manifest(reopened, tmp_path / "none.csv")
    assert not (tmp_path / "none.csv").exists() and len(Review.load(review.file).decisions) == 5


def test_file_names_that_are_not_utf8_survive_review_and_manifest(tmp_path):
    import os

    folder = tmp_path / "smear"
    folder.mkdir()
    odd = os.fsdecode(bytes(folder) + b"/cell-\xff.png")
    Image.new("RGB", (8, 8)).save(os.fsencode(odd))
    review = Review.from_results([ImageResult(odd, proba={"hqnn": onehot(1), "baseline": onehot(1)})],
                                 LABELS, MODELS, "toy")
    review.decide([odd], "c")
    assert Review.load(review.file).decisions == {odd: "c"}
    files = read_manifest(write_manifest(review), LABELS)
    assert [str(p) for p in files.paths] == [odd] and files.targets == [2]


def test_relative_paths_are_made_absolute(smear, monkeypatch):
    folder, results = smear
    monkeypatch.chdir(folder.parent)
    relative = [ImageResult(f"smear/{r.path.rsplit('/', 1)[-1]}", r.error, r.proba) for r in results]
    review = Review.from_results(relative, LABELS, MODELS, "toy")
    assert review.folder == str(folder) and sorted(review.by_path) == paths_of(folder)
    review.decide(paths_of(folder)[:1], "a")
    assert Review.from_results(results, LABELS, MODELS, "toy").decisions == {paths_of(folder)[0]: "a"}
    assert read_manifest(write_manifest(review)).paths == [folder / "cell0.png"]


def test_reviewing_a_folder_with_another_pack_keeps_the_first_packs_decisions(smear):
    folder, results = smear
    p = paths_of(folder)
    first = Review.from_results(results, LABELS, MODELS, "toy")
    first.decide(p[:2], "c")
    first.decide(p[2:3], "a")
    on_disk = json.loads(first.file.read_text())["decisions"]
    other = Review.from_results(results, ["x", "y", "z"], MODELS, "other-pack")
    assert other.decisions == {} and other.file != first.file
    assert json.loads(first.file.read_text())["decisions"] == on_disk  # untouched on disk
    other.decide(p[:1], "y")
    assert [(r.pack, r.n_verified) for r in other_pack_reviews(other)] == [("toy", 3)]
    back = Review.from_results(results, LABELS, MODELS, "toy")
    assert back.decisions == {p[0]: "c", p[1]: "c", p[2]: "a"} and back.file == first.file
    assert sorted((r.pack, r.n_verified) for r in list_reviews()) == [("other-pack", 1), ("toy", 3)]


def test_review_files_of_earlier_versions_belong_to_the_pack_recorded_in_them(smear):
    folder, results = smear
    p = paths_of(folder)
    old = folder_only_review_file(folder)
    old.parent.mkdir(parents=True)
    Review(str(folder), LABELS, MODELS, "toy", [], decisions={p[0]: "b"}, file=old).save()
    kept = old.read_text()
    # another pack leaves the old file alone: still listed, still the same
    assert Review.from_results(results, ["x", "y", "z"], MODELS, "other-pack").decisions == {}
    assert old.read_text() == kept and {r.pack for r in list_reviews()} == {"toy", "other-pack"}
    # its own pack takes it over, decisions and all
    resumed = Review.from_results(results, LABELS, MODELS, "toy")
    assert resumed.decisions == {p[0]: "b"} and resumed.file == review_file(folder, "toy") and not old.exists()
    # a file that records no pack belongs to the pack with its classes
    data = json.loads(resumed.file.read_text())
    resumed.file.unlink()
    del data["pack"]
    old.write_text(json.dumps(data))
    assert Review.from_results(results, ["x", "y", "z"], MODELS, "other-pack").decisions == {}
    assert old.exists()
    assert Review.from_results(results, LABELS, MODELS, "toy").decisions == {p[0]: "b"} and not old.exists()


def test_decisions_of_classes_a_pack_no_longer_has_are_kept_on_disk(smear):
    folder, results = smear
    p = paths_of(folder)
    first = Review.from_results(results, LABELS, MODELS, "toy")
    first.decide(p[:2], "c")
    # the pack was replaced by one of the same name whose classes are a, b, d
    again = Review.from_results(results, ["a", "b", "d"], MODELS, "toy")
    assert again.decisions == {} and again.n_verified == 0
    again.decide(p[2:3], "d")
    assert json.loads(again.file.read_text())["decisions"] == {p[0]: "c", p[1]: "c", p[2]: "d"}
    again.decide(p[:1], "a")  # deciding a cell again under this pack wins; undo brings the old label back
    assert json.loads(again.file.read_text())["decisions"][p[0]] == "a"
    again.undo()
    assert json.loads(again.file.read_text())["decisions"][p[0]] == "c"
    assert Review.from_results(results, LABELS, MODELS, "toy").decisions == {p[0]: "c", p[1]: "c"}


def test_an_image_listed_twice_is_one_cell(smear):
    folder, results = smear
    review = Review.from_results(results + results[:3] + results[-1:], LABELS, MODELS, "toy")
    assert len(review.cells) == 6 and review.unusable == [str(folder / "broken.png")]
    review.decide(paths_of(folder), "a")
    diff = differential(review)
    assert (diff.n_cells, diff.n_verified, diff.n_unusable) == (6, 6, 1)
    assert sum(r.pre["hqnn"] for r in diff.rows) == 6


def test_two_windows_on_one_review_keep_each_others_decisions(smear):
    folder, results = smear
    p = paths_of(folder)
    first = Review.from_results(results, LABELS, MODELS, "toy")
    second = Review.load(first.file)
    first.decide(p[:2], "c")
    second.decide(p[2:3], "a")  # saved after the first window's step: both are in the file
    assert second.take_outside_changes() == [Change(p[0], None, "c"), Change(p[1], None, "c")]
    assert second.take_outside_changes() == []
    assert json.loads(first.file.read_text())["decisions"] == {p[0]: "c", p[1]: "c", p[2]: "a"}
    first.clear(p[1:2])  # the first window takes in the second's decision and keeps its own undo
    assert first.take_outside_changes() == [Change(p[2], None, "a")]
    assert first.decisions == {p[0]: "c", p[2]: "a"}
    second.decide(p[0:1], "b")  # the same cell decided again in the other window: the later step wins
    assert second.decisions == {p[0]: "b", p[2]: "a"}
    first.undo()
    assert first.decisions == {p[0]: "b", p[1]: "c", p[2]: "a"}
    assert Review.load(first.file).decisions == first.decisions
    assert differential(first).rows == differential(Review.load(first.file)).rows
    first.file.write_text("{damaged by another program")
    second.decide(p[3:4], "b")  # set aside, not read as empty decisions and not lost
    assert first.file.with_suffix(".damaged.json").read_text() == "{damaged by another program"
    assert json.loads(second.file.read_text())["decisions"] == {p[0]: "b", p[2]: "a", p[3]: "b"}


def test_a_review_saved_by_a_newer_version_is_left_as_it_is(smear):
    folder, results = smear
    review = Review.from_results(results, LABELS, MODELS, "toy")
    review.decide(paths_of(folder)[:1], "b")
    newer = review.file.read_text().replace('"hqnn-review/1"', '"hqnn-review/2"')
    review.file.write_text(newer)
    with pytest.raises(ReviewError, match="saved by a newer version of hqnn-desktop"):
        Review.from_results(results, LABELS, MODELS, "toy")
    with pytest.raises(ReviewError, match="Update hqnn-desktop"):
        Review.load(review.file)
    assert review.file.read_text() == newer
    assert not list(review.file.parent.glob("*.damaged*.json"))


#: one app copy deciding its own cells over and over, started at the same moment as another
_RACER = """
import sys, time
from pathlib import Path
from hqnn_desktop.core.review import Review
file, go, cells = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
review = Review.load(file)
while not go.exists():
    time.sleep(0.001)
for step in range(60):
    review.decide([cells[step % len(cells)]], "abc"[step % 3])
review.decide(cells, "c")
"""


def test_two_app_copies_saving_at_the_same_time_lose_no_decision(smear, tmp_path):
    folder, results = smear
    p = paths_of(folder)
    review = Review.from_results(results, LABELS, MODELS, "toy")
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", _RACER, str(review.file), str(go), *cells])
              for cells in (p[:3], p[3:])]
    time.sleep(3)  # both copies loaded and waiting
    go.touch()
    assert [r.wait(timeout=120) for r in racers] == [0, 0]
    assert Review.load(review.file).decisions == dict.fromkeys(p, "c")
