"""`reiqa evaluate` on a tiny TID2013-layout dataset built in the test."""

import csv
import json

import numpy as np
import pytest
from flax import nnx
from PIL import Image, ImageFilter

import iqa_fixtures
from reiqa_jax import cli
from reiqa_jax.scoring import evaluate as evaluate_module
from reiqa_jax.checkpoint import save_model
from reiqa_jax.models import ReIQAModel

ARCH = dict(depth=10, width=0.25)
SIZE = (48, 32)


def _distorted_tid(root):
    """5 references x (JPEG, blur) x 2 levels in TID2013's layout, MOS falling with level,
    and one listed file that is truncated (cannot be read)."""
    import io

    root.mkdir(parents=True)
    lines = []
    for ref in range(1, 6):
        base = iqa_fixtures.photo(ref - 1, SIZE)
        for kind, level in ((10, 1), (10, 4), (8, 1), (8, 4)):
            name = f"i{ref:02d}_{kind:02d}_{level}.bmp"
            if kind == 10:
                buffer = io.BytesIO()
                base.save(buffer, format="JPEG", quality={1: 80, 4: 5}[level])
                image = Image.open(buffer).convert("RGB")
            else:
                image = base.filter(ImageFilter.GaussianBlur({1: 0.5, 4: 3.0}[level]))
            path = root / "distorted_images" / name
            path.parent.mkdir(exist_ok=True)
            image.save(path)
            lines.append(f"{6.5 - level + 0.1 * ref:.5f} {name}")
    broken = root / "distorted_images" / "i05_08_4.bmp"
    broken.write_bytes(broken.read_bytes()[:200])
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    save_model(root / "q", ReIQAModel(**ARCH, rngs=nnx.Rngs(0)))
    save_model(root / "c", ReIQAModel(**ARCH, rngs=nnx.Rngs(1)))
    manual = _distorted_tid(root / "tid2013")
    out = root / "out"
    argv = ["evaluate", "TID2013", "--quality-ckpt", str(root / "q"), "--content-ckpt",
            str(root / "c"), "--manual_dir", str(manual), "--out", str(out), "--splits", "3",
            "--models", "ridge", "--no-progress", "--batch-size", "4"]
    return root, manual, out, argv


@pytest.fixture(scope="module")
def first_run(setup):
    root, manual, out, argv = setup
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = cli.main(argv + ["--save", str(root / "model")])
    return status, stdout.getvalue(), stderr.getvalue()


def test_evaluate_reports_beside_the_paper(setup, first_run):
    root, manual, out, _ = setup
    status, stdout, stderr = first_run
    assert status == 1, stderr  # one image could not be read: said, and not exit 0
    assert "TID2013: SRCC" in stdout and "(paper 0.804)" in stdout and "(paper 0.861)" in stdout
    # 19 images in 5 groups: a test part of one group, far too few to compare.
    assert "4 test images per split; too few to compare" in stdout
    assert "note: only 4 test images per split" in stdout
    assert "paper" in stdout and "median" in stdout
    assert "20 images" in stderr and "i05_08_4.bmp" in stderr  # the unreadable one, named
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "tid2013" and report["paper"] == {"srcc": 0.804, "plcc": 0.861}
    assert report["n_images"] == 19 and report["n_failed"] == 1 and report["n_splits"] == 3
    assert report["grouped_by_content"] is True and report["n_groups"] == 5
    assert report["features"] == ["content", "quality"] and report["n_features"] == 512
    assert list(report["failed"]) == ["distorted_images/i05_08_4.bmp"]
    assert report["n_test_min"] == report["n_test_max"] == 4
    assert "only 4 test images per split" in report["small_test_splits"]
    assert (out / "scatter.png").exists() and (out / "tfds").is_dir()


def test_second_run_reuses_the_feature_cache(setup, first_run, monkeypatch, capsys):
    _, _, out, argv = setup
    before = np.load(out / "features.npz")["quality"]
    report = json.loads((out / "report.json").read_text())

    def no_extraction(*args, **kwargs):
        raise AssertionError("features should come from the cache")

    monkeypatch.setattr(evaluate_module, "_make_extractor", no_extraction)
    assert cli.main(argv) == 1  # the unreadable image is remembered, still reported
    assert "reused cached features of 20 images" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(out / "features.npz")["quality"], before)
    assert json.loads((out / "report.json").read_text())["srcc"] == report["srcc"]


def test_exports_feed_regress_and_the_saved_model_scores(setup, first_run, tmp_path, capsys):
    root, manual, out, _ = setup
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert len(rows) == 20 and rows[0]["group"] == "I01"
    features = np.load(out / "features.npz")
    assert str(features["quality_ckpt"]) == str((root / "q").resolve())
    assert list(features["failed_entries"]) == ["distorted_images/i05_08_4.bmp"]
    # The exported pair reruns through reiqa regress (joined on the entries as written).
    assert cli.main(["regress", str(out / "features.npz"), str(out / "scores.csv"), "--out",
                     str(tmp_path / "again"), "--splits", "3", "--models", "ridge",
                     "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "1 of 20 score rows failed extraction" in err
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert again["srcc"] == json.loads((out / "report.json").read_text())["srcc"]
    # --save made a model folder that scores images.
    assert cli.main(["score", str(manual / "distorted_images" / "i01_10_1.bmp"), "--model",
                     str(root / "model"), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("path,score\n")


def test_evaluate_usage_errors(setup, tmp_path, capsys):
    root, manual, _, _ = setup
    cases = [
        (["evaluate", "imagenet", "--manual_dir", str(manual), "--quality-ckpt", str(root / "q")],
         "unknown dataset"),
        (["evaluate", "tid2013", "--quality-ckpt", str(root / "q")], "give --manual_dir"),
        (["evaluate", "live", "--manual_dir", str(manual), "--quality-ckpt", str(root / "q"),
          "--out", str(tmp_path / "o")], "dmos_realigned.mat"),
        (["evaluate", "tid2013", "--manual_dir", str(manual), "--quality-ckpt", str(tmp_path)],
         "not a checkpoint folder"),
        (["evaluate", "tid2013", "--manual_dir", str(manual), "--quality-ckpt", str(root / "q"),
          "--out", str(tmp_path / "a_file")], "is a file"),
        (["evaluate", "tid2013", "--manual_dir", str(manual), "--quality-ckpt", str(root / "q"),
          "--out", str(tmp_path / "o"), "--save", str(tmp_path / "mine")],
         "is not a model folder"),
        (["evaluate", "tid2013", "--manual_dir", str(manual), "--quality-ckpt", str(root / "q"),
          "--out", str(tmp_path / "o"), "--models", "lasso"], "models must be among"),
        (["evaluate", "kadid10k", "--manual_dir", str(tmp_path / "empty"), "--quality-ckpt",
          str(root / "q"), "--out", str(tmp_path / "o")],
         f"manual_dir {tmp_path / 'empty'} is empty (reiqa evaluate kadid10k --instructions "
         "lists the files it needs)"),
    ]
    cases.append((["evaluate", "tid2013", "--manual_dir", str(manual), "--quality-ckpt",
                   str(root / "q"), "--out", str(manual)], "is not a reiqa evaluate folder"))
    cases.append((["evaluate", "tid2013", "--manual_dir", str(manual), "--quality-ckpt",
                   str(root / "q"), "--batch-size", "0"], "error: --batch-size must be at least 1"))
    (tmp_path / "empty").mkdir()
    before = {p: p.read_bytes() for p in manual.rglob("*") if p.is_file()}
    (tmp_path / "a_file").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    for argv, message in cases:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        lines = [line for line in err.strip().splitlines() if "reading the" not in line]
        assert message in err and len(lines) == 1 and "Traceback" not in err
        assert lines[0].startswith("reiqa evaluate: error: ")
    assert (tmp_path / "a_file").read_text() == "mine"
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert not (tmp_path / "o").exists()  # nothing computed, nothing left behind
    assert {p: p.read_bytes() for p in manual.rglob("*") if p.is_file()} == before
    assert cli.main(["evaluate", "csiq", "--instructions"]) == 0
    assert "csiq.DMOS.xlsx" in capsys.readouterr().out


def test_scaled_copy_keeps_small_images(tmp_path):
    big = tmp_path / "big.png"
    iqa_fixtures.photo(0, (64, 48)).save(big)
    scaled = evaluate_module._scaled_copy(str(big), tmp_path, 24, 0)
    assert Image.open(scaled).size == (32, 24)
    assert evaluate_module._scaled_copy(str(big), tmp_path, 48, 1) == str(big)


def test_caches_follow_their_inputs(setup, tmp_path, capsys):
    """A stopped run keeps its features; edited labels rebuild the dataset; an edited
    image is extracted again; everything else comes from the cache."""
    import shutil

    root, manual, _, argv = setup
    copy = tmp_path / "tid2013"
    shutil.copytree(manual, copy)
    out = tmp_path / "out"
    asked = []

    def third_time():  # a signal during the third batch
        asked.append(1)
        return len(asked) >= 3

    with pytest.raises(evaluate_module.Stopped, match=r"features of \d+ of 20 images saved") \
            as stopped:
        evaluate_module.evaluate_dataset(
            "tid2013", copy, quality_ckpt=root / "q", content_ckpt=root / "c", out_dir=out,
            batch_size=4, n_splits=3, models=("ridge",), progress=False,
            should_stop=third_time, log=lambda message: None)
    saved = int(str(stopped.value).split()[2])
    assert 0 < saved < 20 and not (out / "report.json").exists()
    run = argv[:argv.index("--manual_dir")] + [
        "--manual_dir", str(copy), "--out", str(out), "--splits", "3", "--models", "ridge",
        "--no-progress", "--batch-size", "4"]
    assert cli.main(run) == 1  # the truncated image
    assert f"reused cached features of {saved} images" in capsys.readouterr().err
    first = np.load(out / "features.npz")
    # Edit two scores, delete a row, and change one image.
    lines = (copy / "mos_with_names.txt").read_text().splitlines()
    lines = [f"1.0 {lines[0].split()[1]}", f"9.0 {lines[1].split()[1]}"] + lines[3:]
    (copy / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    changed = copy / "distorted_images" / "i02_10_1.bmp"
    Image.open(changed).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(changed)
    assert cli.main(run) == 1
    err = capsys.readouterr().err
    assert "labels in" in err and "changed since" in err and "building it again" in err
    assert "reused cached features of 18 images" in err  # 19 listed, one changed
    report = json.loads((out / "report.json").read_text())
    assert report["n_images"] == 18 and report["n_failed"] == 1
    rows = {r["path"]: float(r["score"]) for r in csv.DictReader((out / "scores.csv").open())}
    assert len(rows) == 19 and "distorted_images/i01_08_1.bmp" not in rows
    assert rows["distorted_images/i01_10_1.bmp"] == 1.0
    assert rows["distorted_images/i01_10_4.bmp"] == 9.0
    second = np.load(out / "features.npz")
    before = dict(zip(first["entries"], first["quality"]))
    after = dict(zip(second["entries"], second["quality"]))
    for entry, row in after.items():
        same = np.array_equal(row, before[entry])
        assert same == (entry != "distorted_images/i02_10_1.bmp"), entry
