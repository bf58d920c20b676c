"""``reiqa train`` end to end on a tiny model: metrics, model export, exact
resumption after SIGTERM and SIGKILL, unreadable images, non-finite loss,
errors found before any compute; the workdir as a lock and a record
(restarts with another model or data order refused, safe changes taken and
recorded in config.json, a failed or interrupted start leaving the run as it
was), as a user runs the command."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import train_testing as tt
from reiqa_jax import cli

# 10 readable photos + 1 corrupt file, 4 per step: 3 steps per epoch; 5 epochs, so
# that a run interrupted after a checkpoint still has steps to go.
EPOCHS = 5
STEPS = 3 * EPOCHS


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tt.write_photos(tmp_path_factory.mktemp("photos"), n=10)
    (folder / "photo_99_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    r = tt.run_train(workdir, data, num_epochs=EPOCHS, keep_checkpoints=20)
    assert r.returncode == 0, r.stderr[-3000:]
    return workdir, r


def _official_lr(step, spe=3, epochs=EPOCHS, lr=1.0, warm=1, warmup_from=0.01):
    epoch, idx = (step - 1) // spe + 1, (step - 1) % spe
    eta_min = lr * 0.1 ** 3
    cos = lambda e: eta_min + (lr - eta_min) * (1 + math.cos(math.pi * e / epochs)) / 2
    if epoch <= warm:
        return warmup_from + (idx + (epoch - 1) * spe) / (warm * spe) * (cos(warm) - warmup_from)
    return cos(epoch)


def test_run_logs_every_step_and_writes_its_record(reference):
    workdir, r = reference
    records = tt.metrics(workdir)
    assert [m["step"] for m in records] == list(range(1, STEPS + 1))
    assert [m["epoch"] for m in records] == [e for e in range(1, EPOCHS + 1) for _ in range(3)]
    for m in records:
        assert m["lr"] == pytest.approx(_official_lr(m["step"]), rel=1e-5)
        assert math.isfinite(m["loss"]) and 0 <= m["acc"] <= 100
        assert m["pairs_per_sec"] > 0 and 0 <= m["data_wait_frac"] <= 1
    # the corrupt file is skipped (counted, cumulative), once per epoch it is drawn
    skipped = [m["skipped_images"] for m in records]
    assert skipped == sorted(skipped) and skipped[-1] >= 2
    assert "skipped unreadable image" in r.stderr and "photo_99_corrupt.jpg" in r.stderr
    # ... named once, though drawn every epoch (the count above goes on)
    assert r.stderr.count("skipped unreadable image") == 1, r.stderr[-2000:]
    assert f"step {STEPS}/{STEPS} epoch {EPOCHS} loss" in r.stdout  # the console progress line
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"]["depth"] == 10 and config["views"]["ops"] == "stand_in"
    assert config["record"]["images"] == 11 and config["record"]["changes"] == []
    # the file whose header cannot be read is counted once, up front
    unusable = [l for l in r.stderr.splitlines() if "unreadable header" in l]
    assert len(unusable) == 1 and "1 of the 11 training images" in unusable[0], r.stderr[-2000:]
    assert "(e.g. photo_99_corrupt.jpg)" in unusable[0]
    run = json.loads((workdir / "run.json").read_text())
    assert run["devices"] == 1 and "revision" in run["git"]
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))


def test_tensorboard_events_are_written_without_importing_torch(tmp_path):
    """tensorboardX would import torch (seconds at every start) when it is installed."""
    script = ("import sys; from reiqa_jax.workdir import MetricLog;"
              "log = MetricLog(sys.argv[1], resume_step=0, total_steps=1);"
              "log.write({'step': 1, 'epoch': 1, 'loss': 1.5, 'acc': 2.0, 'lr': 0.1,"
              " 'pairs_per_sec': 3.0, 'data_wait_frac': 0.0, 'skipped_images': 0}); log.close();"
              "assert 'torch' not in sys.modules;"
              "assert sys.modules.get('torch', 0) == 0")  # no stand-in left: torch still imports
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=120,
                   capture_output=True)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_trained_model_is_read_by_extract_export_and_convert(reference, data, tmp_path):
    import torch

    from reiqa_jax.checkpoint import load_model, load_training_state, model_arrays, read_header
    from reiqa_jax.reference.torch_model import ReIQANet

    workdir, _ = reference
    header = read_header(workdir / "model")
    assert header["arch"] == {"depth": 10, "width": 0.25, "feat_dim": 16}
    assert header["epoch"] == EPOCHS and header["meta"]["step"] == STEPS
    assert set(header["items"]) == {"model", "ema_model", "queue", "opt_momentum"}
    model = load_model(workdir / "model")
    assert load_training_state(workdir / "model")["queue"].shape == (128, 16)
    # `reiqa export` of the newest checkpoint gives the same model
    assert cli.main(["export", str(workdir), str(tmp_path / "exported")]) == 0
    a, b = model_arrays(model), model_arrays(load_model(tmp_path / "exported"))
    for coll in a:
        for k in a[coll]:
            np.testing.assert_array_equal(a[coll][k], b[coll][k], err_msg=k)
    # ... which the official layout takes, and `reiqa extract` reads
    assert cli.main(["convert", "--to-torch", str(tmp_path / "exported"),
                     str(tmp_path / "trained.pth")]) == 0
    sd = torch.load(tmp_path / "trained.pth", weights_only=True)["model"]
    ReIQANet(10, 0.25, 16).load_state_dict({k[len("module."):]: v for k, v in sd.items()})
    out = tmp_path / "f.npz"
    assert cli.main(["extract", "--quality-ckpt", str(workdir / "model"), "-o", str(out),
                     "--no-progress", str(data / "photo_00.jpg")]) == 0
    assert np.load(out)["quality"].shape == (1, 256)


def _wait_for(condition, proc, timeout=240):
    start = time.time()
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"exited early ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        if time.time() - start > timeout:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.02)


def _checkpoints(workdir):
    folder = Path(workdir) / "checkpoints"
    # orbax writes into a temporary name and renames when the save is complete
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) \
        if folder.exists() else []


def test_sigterm_and_sigkill_then_resume_reproduce_the_run(reference, data, tmp_path, capsys):
    workdir = tmp_path / "run"
    cmd, env = tt.train_cmd(workdir, data, num_epochs=EPOCHS), tt.env()
    # 1. SIGTERM after the first logged step: checkpoint at a step boundary, exit 143
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: len(tt.metrics(workdir)) >= 1, p)
    # meanwhile a second run on the same workdir gets one line (the lock)
    assert cli.main(cmd[cmd.index("train"):]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{workdir} is in use by reiqa train, process {p.pid}" in err[0], err
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 143, err[-3000:]
    assert "SIGTERM: saved the checkpoint at step" in err
    first = _checkpoints(workdir)
    assert first and first[-1] < STEPS
    # 2. restart; SIGKILL once it has written a newer checkpoint
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: _checkpoints(workdir) and _checkpoints(workdir)[-1] > first[-1], p)
    p.kill()
    p.communicate(timeout=60)
    assert _checkpoints(workdir)[-1] < STEPS
    # 3. restart and finish: the log reads as one uninterrupted run
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "continuing from the checkpoint at step" in r.stdout
    assert tt.comparable(tt.metrics(workdir)) == tt.comparable(tt.metrics(reference[0]))


def test_resume_where_the_canvas_changes_reproduces_the_run(reference, data, tmp_path):
    """The photos fill two canvases (two compiled steps): restarting from a
    checkpoint after which the next step has the other canvas continues
    exactly as the uninterrupted run."""
    import shutil

    from reiqa_jax.data import canvases, pipeline, sources

    paths = sources.training_images(str(data))
    classes = pipeline.quality_classes(pipeline.read_sizes(paths), step=32, max_side=1024,
                                       min_count=4)
    plan = canvases.EpochPlan(classes.class_of, len(classes.canvases), 4, 0)
    assert len(classes.canvases) == 2 and plan.steps_per_epoch == 3
    ref_dir = reference[0]
    kept = _checkpoints(ref_dir)
    changes = [k for k in kept if 0 < k < STEPS and plan.step_class(k) != plan.step_class(k - 1)]
    assert changes, kept
    workdir = tmp_path / "resumed"
    shutil.copytree(ref_dir, workdir)
    shutil.rmtree(workdir / "model")
    for step in _checkpoints(workdir):
        if step > changes[0]:
            shutil.rmtree(workdir / "checkpoints" / str(step))
    r = tt.run_train(workdir, data, num_epochs=EPOCHS, keep_checkpoints=20)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"continuing from the checkpoint at step {changes[0]}" in r.stdout
    assert tt.comparable(tt.metrics(workdir)) == tt.comparable(tt.metrics(ref_dir))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    # warmup from 0.01 at step 1, then an absurd rate: the weights overflow at step 2
    r = tt.run_train(tmp_path / "nan", data, learning_rate=1e38, checkpoint_every_steps=1)
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if "error:" in l]
    assert len(lines) == 1 and "not finite at step 2" in lines[0], r.stderr[-2000:]
    assert "last good checkpoint is step 1" in lines[0]
    assert _checkpoints(tmp_path / "nan") == [1]
    assert not (tmp_path / "nan" / "model").exists()


def test_errors_before_any_compute(tmp_path, capsys, data):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cases = [
        (["--workdir", str(blocker / "run")], "not writable"),
        (["--workdir", str(blocker)], f"workdir {blocker} is a file; give a folder"),
        (["--workdir", str(tmp_path / "w"), "--config.nope=1"], "unknown config key nope"),
        (["--workdir", str(tmp_path / "w"), "--config.batch_size=many"], "--config.batch_size"),
        (["--workdir", str(tmp_path / "w"), "--config.data=" + str(tmp_path / "none")],
         "does not exist"),
        (["--workdir", str(tmp_path / "w"), f"--config.data={data}", "--config.shuffle_bn=x"],
         "shuffle_bn must be one of"),
    ]
    for args, needle in cases:
        assert cli.main(["train", "--config", "smoke", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0] and err[0].startswith("reiqa train: error:"), err
    assert cli.main(["train", "--config", "no_such_config", "--workdir", "x"]) == 2
    assert "no config named" in capsys.readouterr().err


def test_content_branch_trains(tmp_path, data):
    r = subprocess.run(
        tt.train_cmd(tmp_path / "content", data)[:4]
        + ["--config", "moco_v2_content_r50", "--workdir", str(tmp_path / "content"),
           f"--config.data={data}", "--config.model.depth=10", "--config.model.width=0.25",
           "--config.model.feat_dim=16", "--config.batch_size=4", "--config.num_steps=2",
           "--config.queue_size=64", "--config.tile_hw=(96,96)", "--config.views.patch_size=48", "--config.input.workers=0",
           "--config.log_every_steps=1"],
        env=tt.env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    records = tt.metrics(tmp_path / "content")
    assert [m["step"] for m in records] == [1, 2]
    assert records[0]["lr"] == pytest.approx(0.03)  # SGD, cosine from 0.03
    assert json.loads((tmp_path / "content" / "config.json").read_text())["branch"] == "content"


def test_nothing_readable_is_a_one_line_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(3):
        (folder / f"b{i}.jpg").write_bytes(b"\xff\xd8 truncated")
    r = tt.run_train(tmp_path / "w", folder)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.startswith("reiqa train: error:")]
    assert len(lines) == 1 and "unreadable images in a row" in lines[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------------------
# the workdir: a lock (above, in the SIGTERM test) and a record. Refusals run
# in this process (2 CPU devices: they come before anything looks at the
# devices); runs that train are processes with one device, as the reference.

def _files(workdir) -> dict:
    """Every file of a workdir (but the lock) -> its bytes."""
    return {p.relative_to(workdir): p.read_bytes() for p in sorted(Path(workdir).rglob("*"))
            if p.is_file() and p.name != "lock"}


def _copy(workdir, tmp_path) -> Path:
    return Path(shutil.copytree(workdir, tmp_path / "copy"))


def test_a_restart_that_changes_the_model_or_the_data_order_is_refused(reference, data,
                                                                       tmp_path, capsys):
    run = _copy(reference[0], tmp_path)
    before = _files(run)
    more = Path(shutil.copytree(data, tmp_path / "more"))
    shutil.copy(more / "photo_00.jpg", more / "photo_10.jpg")
    cases = [
        ({"model.depth": 34}, "another config (model.depth 10 -> 34)"),
        ({"batch_size": 8, "seed": 1}, "another config (batch_size 4 -> 8; seed 0 -> 1)"),
        ({"views.n_aug": 2}, "(views.n_aug 1 -> 2)"),
        ({"data": more}, f"the training images are not those the run in {run} was trained on "
                         f"(11 images then, 12 now"),
        ({"num_steps": 10}, f"the run in {run} is at step {STEPS}, past the 10 steps this "
                            f"config asks for (num_steps=10)"),
    ]
    command = tt.train_cmd(run, data, num_epochs=EPOCHS)
    for config, message in cases:
        changed = [f"--config.{k}={v}" for k, v in config.items()]
        assert cli.main(command[command.index("train"):] + changed) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert _files(run) == before  # config.json, checkpoints, metrics: as they were
    # what a refused start used to break: the run still exports
    assert cli.main(["export", str(run), str(tmp_path / "exported")]) == 0


def test_safe_changes_are_taken_and_recorded(reference, data, tmp_path):
    run = _copy(reference[0], tmp_path)
    moved = Path(shutil.copytree(data, tmp_path / "moved"))  # the same images elsewhere
    r = tt.run_train(run, moved, num_epochs=EPOCHS + 1, log_every_steps=2,
                     checkpoint_every_steps=1, keep_checkpoints=3, **{"input.threads": 1})
    assert r.returncode == 0, r.stderr[-3000:]
    # logged every step up to the restart, then every 2 and the last
    assert [m["step"] for m in tt.metrics(run)] == list(range(1, STEPS + 1)) + [16, 18]
    stored = json.loads((run / "config.json").read_text())
    assert stored["num_epochs"] == EPOCHS + 1 and stored["data"] == str(moved)
    [change] = stored["record"]["changes"]
    assert change["step"] == STEPS and change["keys"] == {
        "checkpoint_every_steps": [2, 1], "data": [str(data), str(moved)],
        "input.threads": [2, 1], "keep_checkpoints": [20, 3], "log_every_steps": [1, 2],
        "num_epochs": [EPOCHS, EPOCHS + 1]}
    assert json.loads((run / "model" / "reiqa.json").read_text())["meta"]["step"] == STEPS + 3


def test_a_failed_or_interrupted_start_leaves_the_run_as_it_was(reference, data, tmp_path,
                                                                capsys):
    """Each start takes a change (one more epoch) that it would record."""
    run = _copy(reference[0], tmp_path)
    before = _files(run)
    command = tt.train_cmd(run, data, num_epochs=EPOCHS + 1)
    # 1. a failure found after the change was accepted: the device count
    assert cli.main(command[command.index("train"):]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was written with 1 devices, this run has 2" in err[0], err
    assert _files(run) == before
    # 2. Ctrl-C as a terminal sends it (to the process group): during JAX's
    # start-up, and once the run has printed its plan (state, input, compile)
    for moment in (1.0, "images,"):
        p = subprocess.Popen(command, env=tt.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        if isinstance(moment, float):
            time.sleep(moment)
        else:
            assert moment in p.stdout.readline()
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=120)
        lines = err.strip().splitlines()
        assert p.returncode == 130 and len(lines) == 1, err[-3000:]
        assert "interrupted" in lines[0] or "stopped before the first step" in lines[0], lines
        assert _files(run) == before
