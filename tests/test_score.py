"""Model folders and `reiqa score`, end to end on a small model, bad images included."""

import csv
import io
import json

import numpy as np
import pytest
from flax import nnx

from bad_inputs import jpeg_bytes, photo
from reiqa_jax import cli
from reiqa_jax.checkpoint import save_model
from reiqa_jax.extract import FeatureExtractor, extract_features
from reiqa_jax.models import ReIQAModel
from reiqa_jax.quality_model import (ModelDirError, load_quality_model, make_model_dir,
                                     score_images)
from reiqa_jax.regress import Candidate, Regressor, fit_regressor

ARCH = dict(depth=18, width=0.25)  # 2 x 128 features per encoder
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
