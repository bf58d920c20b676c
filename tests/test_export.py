"""`reiqa export` as a user runs it: relative paths, reruns, and never the user's files."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from reiqa_jax import cli, optim, train
from reiqa_jax import workdir as wd
from reiqa_jax.checkpoint import read_header
from reiqa_jax.config_file import load_config


def snapshot(folder):
    """{relative path: (size, mtime_ns)} of every file under ``folder``."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A training workdir as `reiqa train` leaves it after a run on 2 devices
    (config.json, run.json, one orbax checkpoint of an eighth-width ResNet-18 state),
    written by the trainer's own functions; the arrays are zeros (export copies them,
    whatever they are), so no network is initialised or trained."""
    root = tmp_path_factory.mktemp("export")
    workdir = root / "runs" / "smoke"
    workdir.mkdir(parents=True)
    config = load_config("smoke")
    config.model.width, config.model.feat_dim, config.queue_size = 0.125, 16, 32
    wd.save_run_info(workdir, config, {"images": 4, "images_sha256": "", "changes": []})
    mesh = train.make_mesh()  # the test session's 2 CPU devices
    abstract = train.abstract_state(config, optim.make_optimizer(config), mesh.devices.size,
                                    mesh)

    def zeros(a):
        value = (jax.random.key(0) if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)
                 else np.zeros(a.shape, a.dtype))
        return jax.device_put(value, a.sharding)

    state = jax.tree.map(zeros, abstract)
    manager = wd.checkpoint_manager(workdir, keep=2)
    wd.save_checkpoint(manager, 3, {name: getattr(state, name) for name in
                                    ("step", "params", "batch_stats", "ema_params",
                                     "ema_batch_stats", "opt_state", "queue", "queue_ptr",
                                     "rng")},
                       {"step": 3, "epoch": 1, "devices": mesh.devices.size,
                        "steps_per_epoch": 3})
    manager.wait_until_finished()
    manager.close()
    return root, workdir


def one_line_error(capsys, status, expected):
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("reiqa export: error: ") and len(err.strip().splitlines()) == 1, err
    assert expected in err and "Traceback" not in err, err


def test_relative_workdir_rerun_and_overwrite(run, monkeypatch, capsys):
    root, workdir = run
    monkeypatch.chdir(root)
    before = snapshot(workdir)
    # The README's own form (reiqa export runs/smoke out), as a process on a machine
    # with one device: the run had two.
    env = dict(os.environ, JAX_NUM_CPU_DEVICES="1")
    done = subprocess.run([sys.executable, "-m", "reiqa_jax.cli", "export", "runs/smoke",
                           "model_out"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"reiqa export: {root / 'model_out'}\n"
    header = read_header(root / "model_out")
    assert header["arch"]["width"] == 0.125 and header["epoch"] == 1
    assert header["meta"]["workdir"] == str(workdir)
    assert not list(root.glob("model_out.tmp-*"))
    exported = snapshot(root / "model_out")
    # The same command again: refused, the first export untouched.
    status = cli.main(["export", "runs/smoke", "model_out"])
    one_line_error(capsys, status, "already exists; pass --overwrite")
    assert snapshot(root / "model_out") == exported
    # With --overwrite an earlier export is replaced.
    assert cli.main(["export", "runs/smoke", "model_out", "--overwrite"]) == 0
    assert read_header(root / "model_out")["meta"]["workdir"] == str(workdir)
    assert snapshot(workdir) == before  # the run itself never changes


@pytest.mark.parametrize("where, expected", [
    ("runs/smoke", "is the workdir"),
    ("runs", "a folder holding the workdir"),
    (".", "a folder holding the workdir"),
    ("runs/smoke/checkpoints", "is inside the workdir"),
])
def test_out_may_not_be_the_run(run, monkeypatch, capsys, where, expected):
    root, workdir = run
    monkeypatch.chdir(root)
    before = snapshot(root)
    status = cli.main(["export", "runs/smoke", where, "--overwrite"])
    one_line_error(capsys, status, expected)
    assert snapshot(root) == before


def test_out_holding_other_things_or_a_file_is_refused(run, tmp_path, capsys):
    _, workdir = run
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    for argv, expected in (([str(folder)], "is not a checkpoint folder"),
                           ([str(folder), "--overwrite"], "is not a checkpoint folder"),
                           ([str(folder / "notes.txt")], "is a file"),
                           ([str(folder / "notes.txt"), "--overwrite"], "is a file")):
        status = cli.main(["export", str(workdir), *argv])
        one_line_error(capsys, status, expected)
        assert (folder / "notes.txt").read_text() == "my notes"
        assert sorted(os.listdir(folder)) == ["notes.txt"]
    status = cli.main(["export", str(tmp_path / "nowhere"), str(tmp_path / "o")])
    one_line_error(capsys, status, "is not a training workdir")
    assert not (tmp_path / "o").exists()
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"]["width"] == 0.125  # still the run's own


def test_a_missing_or_unreadable_checkpoint_is_one_line(run, tmp_path, capsys):
    """A step that is not there names those that are; a checkpoint whose data
    cannot be read (as when a running `reiqa train` prunes it mid-read) is one
    line that says to run export again, not a traceback."""
    import shutil

    _, workdir = run
    status = cli.main(["export", str(workdir), str(tmp_path / "a"), "--step", "5"])
    one_line_error(capsys, status, "; it holds steps 3")
    damaged = tmp_path / "damaged"
    shutil.copytree(workdir, damaged)
    files = [p for p in (damaged / "checkpoints" / "3").rglob("d/*") if p.is_file()]
    assert files
    for data in files:  # as pruning leaves it mid-read: the data files gone
        data.unlink()
    # as a user runs it: the reads still under way when the first one fails must not
    # print tracebacks after the one line, at exit
    r = subprocess.run([sys.executable, "-m", "reiqa_jax.cli", "export", str(damaged),
                        str(tmp_path / "b")], capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith(f"reiqa export: error: could not read checkpoint 3 of {damaged}")
    assert "tensorstore_spec" not in lines[0] and not (tmp_path / "b").exists()
