"""`reiqa demo` wired end to end at toy size: train, curve, labelled set, protocol, report, scores."""
import csv
import json
import math
import os
import signal
import time

import pytest

from train_testing import TINY as TRAIN_TINY

from reiqa_jax.demo import run_demo

# The real distortions and the real recipe have their own tests; this pins the
# wiring, with the trainer tests' tiny step (its compilation is shared with them).
TINY = dict(TRAIN_TINY, data="synthetic:12:96x64")
PHOTOS = ("astronaut", "coffee", "camera")
KINDS = ("darken", "pixelate")   # cheap to compile


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    # (the generated pictures go to the session's folder: conftest.py)
    report = run_demo(work, train_steps=4, overrides=TINY, photos=PHOTOS, kinds=KINDS,
                      n_splits=3, random_seeds=(1,), example_photo="coffee", quiet=True)
    return work, report


def test_report_has_the_curve_the_references_and_the_example(demo):
    work, report = demo
    saved = json.loads((work / "demo_report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert [p["step"] for p in saved["curve"]] == [0, 1, 2, 4]
    assert saved["n_images"] == 3 * (2 * 5 + 1) and saved["n_splits"] == 3
    for point in saved["curve"]:
        assert -1 <= point["srcc"] <= 1 and len(point["per_split_srcc"]) == 3
        assert set(point["series_srcc"]) == set(KINDS)
    assert saved["curve"][0]["loss"] is None   # no step has run at 0 %
    for point in saved["curve"][1:]:
        assert math.isfinite(point["loss"]) and 0 <= point["top1"] <= 100
    assert saved["trained"] == saved["curve"][-1]
    assert saved["random_init"]["seeds"] == [1]
    assert saved["random_init"]["srcc_min"] <= saved["random_init"]["srcc_mean"] \
        <= saved["random_init"]["srcc_max"]
    assert set(saved["classical"]) == {"mean_gradient_magnitude", "laplacian_variance",
                                       "rms_contrast", "combined"}
    assert 0 <= saved["splits_ahead_of_classical"] <= 3
    assert saved["photos"]["test"] == list(PHOTOS)
    assert not set(saved["photos"]["test"]) & set(saved["photos"]["validation_recipe_chosen_on"])
    assert saved["train_data"].startswith("synthetic:")
    assert saved["machine"]["cores"] >= 1 and saved["created"].endswith("UTC")
    assert (work / "demo.png").stat().st_size > 20_000
    # the curve's middle points are exported from the run's own checkpoints
    assert json.loads((work / "curve" / "step_2" / "reiqa.json").read_text())["meta"]["step"] == 2


def test_the_summary_gives_the_example_checks_pass_rate_over_test_photos(demo, capsys):
    """Every feature set's report carries the share of test photos whose pristine
    picture is above every kind's level 4; the printed summary says it."""
    from reiqa_jax.demo.report import every_kind_line, print_summary

    work, report = demo
    for summary in (report["trained"], report["classical"]["combined"],
                    *report["random_init"]["per_seed"].values()):
        assert 0 <= summary["pristine_above_every_kind"] <= \
            summary["pristine_above_strongest_min"] <= 1
    print_summary(report, work)
    assert every_kind_line(report) in capsys.readouterr().out


def test_example_photo_is_scored_by_the_model_folder(demo):
    work, report = demo
    rows = list(csv.DictReader(open(work / "scored_examples.csv")))
    names = [r["path"].rsplit("/", 1)[1] for r in rows]
    assert names == ["coffee_pristine.png"] + [f"coffee_{k}_{level}.png" for k in KINDS
                                               for level in range(5)]
    scores = [float(r["score"]) for r in rows]
    ex = report["example"]
    # the CSV holds 6 significant digits
    assert ex["scores"]["pristine"] == pytest.approx(scores[0], rel=1e-5)
    assert ex["scores"]["pixelate"] == pytest.approx(scores[6:11], rel=1e-5)
    assert ex["pristine_above_strongest"]["pixelate"] == (scores[0] > scores[10])
    # the regressor never saw the example photo
    fitted = json.loads((work / "model" / "regressor.json").read_text())
    assert fitted["n_train"] == 2 * (2 * 5 + 1)


def test_a_workdir_of_other_settings_is_refused_before_any_compute(demo):
    from reiqa_jax.demo.training import DemoError

    work, _ = demo
    stamp = (work / "demo_report.json").stat().st_mtime_ns
    with pytest.raises(DemoError, match="num_steps: 4 there, 8 now") as info:
        run_demo(work, train_steps=8, overrides=TINY, photos=PHOTOS, kinds=KINDS)
    assert "\n" not in str(info.value)
    assert (work / "demo_report.json").stat().st_mtime_ns == stamp


def test_a_file_or_a_folder_of_other_things_is_refused_as_the_workdir(tmp_path):
    from reiqa_jax.demo.training import DemoError

    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    with pytest.raises(DemoError, match="is a file"):
        run_demo(mine, train_steps=4, overrides=TINY)
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "data.csv").write_text("a,b\n")
    with pytest.raises(DemoError, match="not a demo folder"):
        run_demo(folder, train_steps=4, overrides=TINY)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data.csv", "notes.txt", "project"]
    assert mine.read_text() == "mine"


def test_random_inits_of_every_seed_share_one_compiled_program(demo):
    import jax
    import numpy as np

    from reiqa_jax.demo.training import _init_program

    # the demo made the encoders of step 0 and of random seed 1 from one program
    assert _init_program.cache_info().misses == 1 and _init_program.cache_info().hits >= 1
    arch = (TINY["model.depth"], TINY["model.width"], TINY["model.feat_dim"])
    _, init = _init_program(*arch)
    assert _init_program(*arch)[1] is init
    kernels = [np.asarray(init(jax.random.key(seed))["encoder"]["conv1"]["kernel"].get_value())
               for seed in (1, 2, 3)]
    assert init._cache_size() == 1   # one program for every seed
    assert not np.array_equal(kernels[0], kernels[1])
    assert not np.array_equal(kernels[1], kernels[2])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_outside_the_training_says_what_to_do(signum, tmp_path, monkeypatch, capsys):
    """Ctrl-C or SIGTERM while the demo makes its pictures or measures (the training
    reports its own stop): exit 130 / 143 and one line that says the rerun goes on."""
    import reiqa_jax.demo
    from reiqa_jax import cli

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(10)  # the signal arrives during the work
        raise AssertionError("the signal did not stop the demo")

    monkeypatch.setattr(reiqa_jax.demo, "run_demo", signalled)
    previous = signal.getsignal(signal.SIGTERM)
    assert cli.main(["demo", "--workdir", str(tmp_path / "d")]) == 128 + signum
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"reiqa demo: stopped by {signal.Signals(signum).name}; what is finished "
                   f"stays in {tmp_path / 'd'}: run the same command again to go on"], err
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back


def test_curve_metrics_come_from_the_logged_steps_of_their_window_only():
    """Loss / top-1 beside each curve point: the mean of the steps logged in its
    window, never step 1 (random queue) and never a step from outside the window."""
    from reiqa_jax.demo.report import metrics_near

    rows = [{"step": s, "loss": float(s), "acc": 2.0 * s} for s in (1, *range(10, 101, 10))]
    assert metrics_near(rows, 50, 20) == {"loss": 45.0, "top1": 90.0, "logged_steps": [40, 50]}
    assert metrics_near(rows, 0, 20)["loss"] is None
    assert metrics_near(rows, 10, 20)["logged_steps"] == [10]  # step 1 left out
    assert metrics_near(rows, 1, 20)["logged_steps"] == [1]    # ... unless it is the point
    # 8 steps logged every 10: only steps 1 and 8 are in the log
    short = [rows[0], {"step": 8, "loss": 8.0, "acc": 16.0}]
    assert metrics_near(short, 2, 10) == {"loss": None, "top1": None, "logged_steps": []}
    assert metrics_near(short, 8, 10)["logged_steps"] == [8]


def test_a_second_demo_in_the_same_workdir_is_refused_before_it_writes(tmp_path, capsys):
    """One demo per workdir: while one holds it, another stops in one line (exit 2)
    and writes nothing there (two at once rewrote each other's pictures)."""
    from reiqa_jax import cli
    from reiqa_jax.demo.training import DEMO_LOCK
    from reiqa_jax.workdir import RunLock

    work = tmp_path / "d"
    work.mkdir()
    with RunLock(work, program="reiqa demo", name=DEMO_LOCK):
        assert cli.main(["demo", "--workdir", str(work)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"is in use by reiqa demo, process {os.getpid()}" in err[0], err
    assert "one reiqa demo per workdir" in err[0]
    assert os.listdir(work) == [DEMO_LOCK]
