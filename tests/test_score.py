"""Model folders and `reiqa score`, end to end on a small model, bad images included."""

import csv
import io
import json
import os

import numpy as np
import pytest
from flax import nnx

from bad_inputs import jpeg_bytes, photo
from reiqa_jax import cli
from reiqa_jax.checkpoint import save_model
from reiqa_jax.extract import FeatureExtractor, extract_features
from reiqa_jax.models import ReIQAModel
from reiqa_jax.scoring.model_dir import (ModelDirError, load_quality_model, make_model_dir,
                                     score_images)
from reiqa_jax.scoring.protocol import Candidate, fit_regressor
from reiqa_jax.scoring.regressor import Regressor

ARCH = dict(depth=10, width=0.25)  # 2 x 128 features per encoder
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
QUALITIES = (5, 15, 40, 90)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Two tiny encoders, 16 JPEGs of 4 photos at 4 qualities, their features and a model."""
    root = tmp_path_factory.mktemp("score")
    quality_model = ReIQAModel(**ARCH, rngs=nnx.Rngs(0))
    content_model = ReIQAModel(**ARCH, rngs=nnx.Rngs(1))
    save_model(root / "ckpt_q", quality_model)
    save_model(root / "ckpt_c", content_model)
    images = root / "train"
    images.mkdir()
    entries, scores, groups = [], [], []
    for name in PHOTOS:
        for quality in QUALITIES:
            path = images / f"{name}_q{quality:02d}.jpg"
            path.write_bytes(jpeg_bytes(photo(name, (64, 48)), quality=quality))
            entries.append(f"train/{path.name}")
            scores.append(float(quality))
            groups.append(name)
    extractor = FeatureExtractor(quality_model=quality_model, content_model=content_model,
                                 batch_size=8)
    features = extractor.extract([str(root / e) for e in entries], progress=False)
    assert not features.failed
    # The .npz as `reiqa extract` writes it (entries as written, checkpoints recorded).
    np.savez(root / "features.npz", paths=np.array(features.paths), entries=np.array(entries),
             quality=features.quality, content=features.content, failed=np.array([], str),
             failed_entries=np.array([], str), errors=np.array([], str),
             quality_ckpt=np.array(str(root / "ckpt_q")), content_ckpt=np.array(str(root / "ckpt_c")))
    with open(root / "scores.csv", "w") as handle:
        handle.write("path,score,group\n")
        handle.writelines(f"{e},{s},{g}\n" for e, s, g in zip(entries, scores, groups))
    regressor = fit_regressor(features.reiqa(), scores, Candidate("ridge", 0.1))
    model = make_model_dir(root / "model", regressor, quality_ckpt=root / "ckpt_q",
                           content_ckpt=root / "ckpt_c", meta={"test": True})
    return {"root": root, "features": features, "regressor": regressor, "model": model,
            "entries": entries}


@pytest.fixture(scope="module")
def inputs(setup):
    """A folder to score: two good images and two that cannot be read."""
    folder = setup["root"] / "to_score"
    folder.mkdir()
    (folder / "a_good.jpg").write_bytes(jpeg_bytes(photo("astronaut", (64, 48)), quality=5))
    (folder / "b_good.jpg").write_bytes(jpeg_bytes(photo("coffee", (64, 48)), quality=90))
    whole = jpeg_bytes(photo("chelsea", (64, 48)), quality=90)
    (folder / "c_truncated.jpg").write_bytes(whole[: len(whole) // 3])
    (folder / "d_not_an_image.png").write_text("hello")
    return folder


def test_model_dir_layout_and_no_pickle(setup):
    model = setup["model"]
    header = json.loads((model / "reiqa_model.json").read_text())
    assert header["format"] == "reiqa-jax-quality-model" and header["features"] == ["content", "quality"]
    assert header["higher_is_better"] is True and header["meta"] == {"test": True}
    for name in ("quality", "content"):
        assert (model / name / "reiqa.json").exists()  # a full checkpoint copy
    with np.load(model / "regressor.npz", allow_pickle=False) as arrays:
        assert arrays["coef"].shape == (512,)
    loaded = load_quality_model(model)
    x = setup["features"].reiqa()
    np.testing.assert_array_equal(loaded.regressor.quality(x), setup["regressor"].quality(x))


def test_score_images_matches_the_regressor_and_reports_bad_files(setup, inputs):
    errors = []
    rows = score_images([str(inputs), str(setup["root"] / "train" / "coffee_q90.jpg")],
                        setup["model"], on_error=lambda p, m: errors.append(p))
    names = [r.path.rsplit("/", 1)[-1] for r in rows]
    assert names == ["a_good.jpg", "b_good.jpg", "c_truncated.jpg", "d_not_an_image.png",
                     "coffee_q90.jpg"]
    assert [r.score is None for r in rows] == [False, False, True, True, False]
    assert all(r.error for r in rows if r.score is None) and len(errors) == 2
    # The training image scores exactly what the regressor says on its features,
    # extracted alone as `score` extracts it (in the training batch it shared a
    # padded canvas with other sizes: the same features within float rounding).
    root = setup["root"]
    alone = extract_features([str(root / "train" / "coffee_q90.jpg")],
                             quality_ckpt=root / "ckpt_q", content_ckpt=root / "ckpt_c")
    expected = setup["regressor"].quality(alone.reiqa())[0]
    assert rows[-1].score == pytest.approx(expected, rel=1e-5, abs=1e-4)
    index = setup["entries"].index("train/coffee_q90.jpg")
    in_batch = setup["regressor"].quality(setup["features"].reiqa()[index:index + 1])[0]
    assert rows[-1].score == pytest.approx(in_batch, rel=1e-3)
    # Same pixels (coffee q90 written twice), same score.
    assert rows[1].score == pytest.approx(rows[-1].score, rel=1e-6)


def test_score_cli_csv_stderr_and_exit_status(setup, inputs, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    status = cli.main(["score", str(inputs), "--model", str(setup["model"]), "-o", str(out),
                       "--no-progress"])
    assert status == 1  # some images failed
    captured = capsys.readouterr()
    assert "cannot score" in captured.err and "c_truncated.jpg" in captured.err
    assert "d_not_an_image.png" in captured.err and "2 of 4 image(s) scored" in captured.err
    assert "Traceback" not in captured.err
    rows = list(csv.DictReader(out.open()))
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == [
        "a_good.jpg", "b_good.jpg", "c_truncated.jpg", "d_not_an_image.png"]
    assert rows[0]["score"] and rows[1]["score"] and rows[2]["score"] == rows[3]["score"] == ""
    # All good: exit 0, CSV on stdout.
    assert cli.main(["score", str(inputs / "a_good.jpg"), "--model", str(setup["model"]),
                     "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert list(csv.reader(io.StringIO(printed)))[0] == ["path", "score"]
    assert float(printed.splitlines()[1].split(",")[1]) == pytest.approx(float(rows[0]["score"]),
                                                                         rel=1e-5)
    # Usage errors: exit 2, one line, no traceback.
    for argv, message in ((["score", str(inputs), "--model", str(tmp_path)], "not a model directory"),
                          (["score", str(tmp_path / "nope.jpg"), "--model", str(setup["model"])],
                           "does not exist")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_regress_save_then_score(setup, tmp_path, capsys):
    root = setup["root"]
    model = tmp_path / "model"
    argv = ["regress", str(root / "features.npz"), str(root / "scores.csv"), "--out",
            str(tmp_path / "report"), "--save", str(model), "--splits", "2", "--models", "ridge",
            "--no-progress", "--lower-is-better"]
    assert cli.main(argv) == 0
    assert "model (ridge" in capsys.readouterr().err
    loaded = load_quality_model(model)
    assert loaded.regressor.n_train == 16 and loaded.regressor.higher_is_better is False
    assert loaded.header["source"]["quality"] == str((root / "ckpt_q").resolve())
    # Scores treated as DMOS: `reiqa score` mirrors them, so its output runs against
    # the raw prediction of the regressor.
    x = setup["features"].reiqa()
    assert np.corrcoef(loaded.regressor.quality(x), loaded.regressor.predict(x))[0, 1] < -0.999
    assert cli.main(argv) == 2 and "already exists" in capsys.readouterr().err
    assert cli.main(argv + ["--overwrite"]) == 0


def test_make_model_dir_errors(setup, tmp_path):
    regressor = setup["regressor"]
    with pytest.raises(ModelDirError, match="no content encoder"):
        make_model_dir(tmp_path / "m", regressor, quality_ckpt=setup["root"] / "ckpt_q")
    with pytest.raises(ModelDirError, match="content checkpoint"):
        make_model_dir(tmp_path / "m", regressor, quality_ckpt=setup["root"] / "ckpt_q",
                       content_ckpt=tmp_path)
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.*"))
    quality_only = Regressor(coef=np.zeros(256), intercept=1.0, mean=np.zeros(256),
                             scale=np.ones(256), features=("quality",))
    model = make_model_dir(tmp_path / "q", quality_only, quality_ckpt=setup["root"] / "ckpt_q")
    assert not (model / "content").exists()
    rows = score_images([str(setup["root"] / "train" / "rocket_q40.jpg")], model)
    assert rows[0].score == pytest.approx(1.0)


def _one_line(capsys, status, expected, prog="reiqa score"):
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    assert expected in err and "Traceback" not in err, err


def test_output_is_checked_first_and_never_replaced(setup, inputs, tmp_path, capsys):
    mine = tmp_path / "mine.csv"
    mine.write_text("my,own\n")
    (tmp_path / "folder").mkdir()
    # The output is checked before the model folder is even read (--model does not exist).
    for out, expected in ((mine, "exists; pass --overwrite"), (tmp_path / "folder", "is a folder"),
                          (mine / "x.csv", "is not a writable folder")):
        status = cli.main(["score", str(inputs), "--model", str(tmp_path / "no_model"),
                           "-o", str(out)])
        _one_line(capsys, status, expected)
    assert mine.read_text() == "my,own\n" and not list(tmp_path.glob("*.partial"))
    assert cli.main(["score", str(inputs / "a_good.jpg"), "--model", str(setup["model"]),
                     "-o", str(mine), "--overwrite", "--no-progress"]) == 0
    assert mine.read_text().startswith("path,score\n") and len(mine.read_text().splitlines()) == 2
    assert not (tmp_path / "mine.csv.partial").exists()


def test_output_is_never_an_input_or_an_image_name(setup, inputs, tmp_path, capsys):
    """-o names one of the inputs (an image in a folder given, a list given) or an
    image file: refused in one line, even with --overwrite, and the file is kept."""
    import shutil

    folder = tmp_path / "photos"
    shutil.copytree(inputs, folder)
    image = folder / "a_good.jpg"
    scan = folder / "scan.data"  # an image under another name, listed
    scan.write_bytes(image.read_bytes())
    listing = tmp_path / "list.csv"
    listing.write_text(f"path\n{image}\n{scan}\n")
    kept = {path: path.read_bytes() for path in (image, scan, listing)}
    for given, out, expected in ((folder, image, "is named as an image"),
                                 (image, tmp_path / "new.png", "is named as an image"),
                                 (listing, listing, "is one of the inputs"),
                                 (listing, scan, "is one of the inputs")):
        status = cli.main(["score", str(given), "--model", str(setup["model"]), "-o", str(out),
                           "--overwrite", "--no-progress"])
        _one_line(capsys, status, expected)
    assert {path: path.read_bytes() for path in kept} == kept
    assert not (tmp_path / "new.png").exists() and not list(tmp_path.rglob("*.partial"))


def test_output_is_never_a_link_or_a_special_file_and_any_file_name_is_written(
        setup, inputs, tmp_path, capsys):
    """-o a link (replacing it would leave its target as it was) or a FIFO (or a
    device such as /dev/stdout, which a move would replace): refused in one line,
    even with --overwrite. An input whose name is not UTF-8 is written back as its
    own bytes, as on the screen."""
    real = tmp_path / "real.csv"
    real.write_text("mine\n")
    (tmp_path / "link.csv").symlink_to(real)
    os.mkfifo(tmp_path / "fifo.csv")
    for out, expected in (("link.csv", "is a link"), ("fifo.csv", "is a device, FIFO or socket")):
        status = cli.main(["score", str(inputs / "a_good.jpg"), "--model", str(setup["model"]),
                           "-o", str(tmp_path / out), "--overwrite", "--no-progress"])
        _one_line(capsys, status, expected)
    assert (tmp_path / "link.csv").is_symlink() and real.read_text() == "mine\n"
    assert not (tmp_path / "fifo.csv").is_file()
    odd = tmp_path / "odd"
    odd.mkdir()
    name = os.fsdecode(b"caf\xe9.jpg")  # a Latin-1 byte: no UTF-8 name
    (odd / name).write_bytes((inputs / "a_good.jpg").read_bytes())
    assert cli.main(["score", str(odd), "--model", str(setup["model"]), "-o",
                     str(tmp_path / "odd.csv"), "--no-progress"]) == 0
    assert b"caf\xe9.jpg," in (tmp_path / "odd.csv").read_bytes()
    assert not (tmp_path / "odd.csv.partial").exists()


def test_screen_output_stops_quietly_when_its_reader_goes(setup, many):
    """`reiqa score ... | head -n 1` as a shell runs it: the pipe closes under a
    running score; exit 141 (SIGPIPE's status), no traceback."""
    import subprocess
    import sys

    command = (f"{sys.executable} -m reiqa_jax.cli score {many} --model {setup['model']} "
               "--batch-size 1 --no-progress | head -n 1")
    r = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True,
                       text=True, timeout=300)
    assert r.stdout == "path,score\n" and r.returncode == 141, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr


def test_a_damaged_encoder_is_reported_before_any_row(setup, inputs, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(setup["model"], broken)
    shutil.rmtree(broken / "quality")
    _one_line(capsys, cli.main(["score", str(inputs / "a_good.jpg"), "--model", str(broken)]),
              "quality encoder")
    assert capsys.readouterr().out == ""


def test_damaged_model_folders_are_one_line_and_made_with_normal_permissions(setup, inputs,
                                                                            tmp_path, capsys):
    import shutil

    umask = os.umask(0)
    os.umask(umask)
    assert setup["model"].stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
    image = str(inputs / "a_good.jpg")
    truncated = tmp_path / "truncated"
    shutil.copytree(setup["model"], truncated)
    whole = (truncated / "regressor.npz").read_bytes()
    (truncated / "regressor.npz").write_bytes(whole[: len(whole) // 2])
    _one_line(capsys, cli.main(["score", image, "--model", str(truncated)]),
              "no readable regressor")
    nan = tmp_path / "nan"
    shutil.copytree(setup["model"], nan, ignore=shutil.ignore_patterns("quality", "content"))
    with np.load(nan / "regressor.npz") as arrays:
        values = dict(arrays)
    values["coef"][3] = np.nan
    np.savez(nan / "regressor.npz", **values)
    _one_line(capsys, cli.main(["score", image, "--model", str(nan)]),
              "coef hold NaN or infinite values")
    with pytest.raises(ModelDirError, match="NaN"):
        load_quality_model(nan)


@pytest.fixture(scope="module")
def many(setup):
    """96 images of one size: twelve batches of 8."""
    folder = setup["root"] / "many"
    folder.mkdir()
    for i in range(96):
        image = photo(PHOTOS[i % 4], (64, 48))
        (folder / f"{i:02d}.jpg").write_bytes(jpeg_bytes(image, quality=5 + i))
    return folder


def test_ctrl_c_keeps_finished_scores_and_a_rerun_resumes(setup, many, tmp_path, capsys):
    """As a user runs it: Ctrl-C -> one line, exit 130, scores saved; the same
    command again scores only the rest and writes every row."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "scores.csv"
    argv = ["score", str(many), "--model", str(setup["model"]), "-o", str(out), "--no-progress"]
    process = subprocess.Popen([sys.executable, "-m", "reiqa_jax.cli", *argv, "--save-every",
                                "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while (not list((tmp_path / "scores.csv.partial").glob("shard-*.npz"))
           and process.poll() is None and time.monotonic() < deadline):
        time.sleep(0.01)  # until the first finished scores are saved
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("reiqa score: stopped by SIGINT; ") and "run the same" in lines[0]
    saved = int(lines[0].split("; ")[1].split(" of ")[0])
    assert 0 < saved < 96 and not out.exists() and stdout == ""
    # The same command again: resumes, and the rows are those of a run never stopped.
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert f"resuming: {saved} of 96 image(s) already scored" in err
    assert not (tmp_path / "scores.csv.partial").exists()
    assert cli.main(["score", str(many), "--model", str(setup["model"]), "-o",
                     str(tmp_path / "straight.csv"), "--no-progress"]) == 0
    got = list(csv.reader(out.open()))
    want = list(csv.reader((tmp_path / "straight.csv").open()))
    assert got[0] == want[0] == ["path", "score"] and len(got) == 97
    assert [row[0] for row in got] == [row[0] for row in want]
    np.testing.assert_allclose([float(row[1]) for row in got[1:]],
                               [float(row[1]) for row in want[1:]], rtol=1e-4)
