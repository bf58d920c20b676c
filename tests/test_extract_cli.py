"""`reiqa extract` as a command: resumable output, signals, output checks, CSV columns,
exit status, one-line errors."""
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bad_inputs import photo
from reiqa_jax import cli
from reiqa_jax.checkpoint import build_model, save_model
from reiqa_jax.scoring.features import load_features
from model_testing import random_arrays

ARCH = dict(depth=10, width=0.25, feat_dim=16)
# 12 photos of 3 sizes, named so that folder order is input order.
SIZES = [(48, 40), (64, 48), (40, 56)]
COUNT = 12
# One image per step, each size compiled on its own (no canvas): many steps to interrupt.
STEPWISE = ["--batch-size", "1", "--buckets", "0"]
NAMES = ["astronaut", "coffee", "chelsea", "rocket"]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    out = {}
    for seed, name in enumerate(("quality", "content")):
        out[name] = Path(save_model(root / name, build_model(ARCH, random_arrays(ARCH, seed))))
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for i in range(COUNT):
        photo(NAMES[i % len(NAMES)], SIZES[i % len(SIZES)]).save(root / f"{i:02d}.png")
    return root


def _argv(ckpts, out, *inputs, extra=()):
    return ["extract", "--quality-ckpt", str(ckpts["quality"]), "--content-ckpt",
            str(ckpts["content"]), "-o", str(out), "--no-progress", *extra, *map(str, inputs)]


def _one_error_line(text: str, code: int) -> str:
    lines = [line for line in text.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in text, text
    assert code == 2 and lines[0].startswith("reiqa extract: error: "), (code, text)
    return lines[0]


@pytest.fixture(scope="module")
def uninterrupted(ckpts, folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "features.npz"
    assert cli.main(_argv(ckpts, out, folder, extra=STEPWISE)) == 0
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_then_the_same_command_gives_the_uninterrupted_npz(
        sig, ckpts, folder, uninterrupted, tmp_path):
    out = tmp_path / "features.npz"
    command = [sys.executable, "-m", "reiqa_jax.cli",
               *_argv(ckpts, out, folder, extra=[*STEPWISE, "--save-every", "0"])]
    # A cold compilation cache of its own: each new size compiles, so the run is still
    # going when its first shard appears.
    env = dict(os.environ, REIQA_JAX_CACHE_DIR=str(tmp_path / "cache"))
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "features.npz.partial"
    deadline = time.monotonic() + 240
    while not list(partial.glob("shard-*.npz")) and process.poll() is None:
        assert time.monotonic() < deadline, "no shard written"
        time.sleep(0.01)
    process.send_signal(sig)
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"reiqa extract: stopped by {sig.name}; ") and "saved in" in last
    saved = int(last.split("; ")[1].split(" of ")[0])
    assert 0 < saved < COUNT, "the signal should land mid-run"
    assert not out.exists() and partial.is_dir()

    # The same command again: only the rest is computed, and the file is the same bytes.
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resuming: {saved} of {COUNT} image(s) already saved" in again.stderr
    assert out.read_bytes() == uninterrupted.read_bytes()
    assert not partial.exists()


def test_a_signal_during_start_up_stops_in_one_line_with_nothing_written(
        ckpts, folder, tmp_path, capsys, monkeypatch):
    """Ctrl-C while jax loads (here: as the CPU devices are set up) is handled like any other."""
    import reiqa_jax.cpu_devices

    assert threading.current_thread() is threading.main_thread()  # where the handlers live
    real = reiqa_jax.cpu_devices.use_cpu_devices

    def then_ctrl_c(*args):
        result = real(*args)
        signal.raise_signal(signal.SIGINT)
        return result

    monkeypatch.setattr(reiqa_jax.cpu_devices, "use_cpu_devices", then_ctrl_c)
    code = cli.main(_argv(ckpts, tmp_path / "o.npz", folder))
    assert code == 130
    assert capsys.readouterr().err.splitlines() == [
        "reiqa extract: stopped by SIGINT before any image was finished; nothing written"]
    assert list(tmp_path.iterdir()) == []


def test_output_is_checked_before_anything_is_computed(ckpts, folder, tmp_path, capsys):
    # A checkpoint whose arrays are damaged: reading it would fail, so an error
    # about the output proves that the output was checked first.
    damaged = tmp_path / "damaged"
    save_model(damaged, build_model(ARCH, random_arrays(ARCH, 5)))
    for data in (damaged / "state").rglob("d/*"):
        data.write_bytes(b"\0")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    argv = ["extract", "--quality-ckpt", str(damaged), "-o", str(blocker / "out.npz"),
            str(folder)]
    code = cli.main(argv)
    line = _one_error_line(capsys.readouterr().err, code)
    assert "cannot write" in line and str(blocker) in line
    # a FIFO or a link as the output: refused, even with --overwrite, and left as it is
    os.mkfifo(tmp_path / "fifo.npz")
    (tmp_path / "link.npz").symlink_to(blocker)
    for name, expected in (("fifo.npz", "is a device, FIFO or socket"), ("link.npz", "is a link")):
        code = cli.main(argv[:4] + [str(tmp_path / name), "--overwrite", str(folder)])
        assert expected in _one_error_line(capsys.readouterr().err, code)
    assert (tmp_path / "link.npz").is_symlink() and not (tmp_path / "fifo.npz").is_file()
    if os.geteuid() != 0:  # root ignores permissions
        locked = tmp_path / "read_only"
        locked.mkdir(mode=0o555)
        argv[4] = str(locked / "out.npz")
        code = cli.main(argv)
        assert "cannot write" in _one_error_line(capsys.readouterr().err, code)
        assert list(locked.iterdir()) == []


def test_existing_output_needs_overwrite_and_output_name_is_reported(ckpts, folder, tmp_path,
                                                                     capsys):
    image = sorted(folder.iterdir())[0]
    out = tmp_path / "feats"  # no suffix: numpy's rule adds .npz, and we say so
    assert cli.main(_argv(ckpts, out, image)) == 0
    err = capsys.readouterr().err
    assert (tmp_path / "feats.npz").exists() and not out.exists()
    assert err.strip().endswith(f"-> {tmp_path / 'feats.npz'}")
    before = (tmp_path / "feats.npz").read_bytes()
    code = cli.main(_argv(ckpts, out, image, image))
    assert "exists; pass --overwrite" in _one_error_line(capsys.readouterr().err, code)
    assert (tmp_path / "feats.npz").read_bytes() == before
    first = load_features(tmp_path / "feats.npz")
    # --low-memory (YNNPACK's convolutions): the same features, float32 rounding apart
    assert cli.main(_argv(ckpts, out, image, image, extra=["--overwrite", "--low-memory"])) == 0
    again = load_features(tmp_path / "feats.npz")
    assert again.paths == first.paths * 2
    for name in ("quality", "content"):
        want = np.repeat(getattr(first, name), 2, axis=0)
        np.testing.assert_allclose(getattr(again, name), want, rtol=0,
                                   atol=1e-5 * np.abs(want).max())
    assert not (tmp_path / "feats.npz.partial").exists()


def test_entries_as_written_and_csv_columns_are_carried_through(ckpts, tmp_path, monkeypatch,
                                                               capsys):
    dataset = tmp_path / "koniq"
    (dataset / "images").mkdir(parents=True)
    for i, name in enumerate(["a.png", "b.png", "c.png"]):
        photo(NAMES[i], (40, 32)).save(dataset / "images" / name)
    (dataset / "labels.csv").write_text(
        "image_name,MOS,split\nimages/b.png,3.5,train\nimages/missing.png,2.0,test\n"
        "images/a.png,4.25,test\n")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out.npz"
    code = cli.main(_argv(ckpts, out, "koniq/labels.csv", "koniq/images/c.png",
                          "koniq/images/"))
    assert code == 1  # images/missing.png failed
    f = load_features(out)
    assert f.entries == ["images/b.png", "images/a.png", "koniq/images/c.png",
                         "koniq/images/a.png", "koniq/images/b.png", "koniq/images/c.png"]
    assert f.paths == [str(dataset / "images" / n) for n in ("b.png", "a.png", "c.png",
                                                               "a.png", "b.png", "c.png")]
    assert f.columns == {"MOS": ["3.5", "4.25", "", "", "", ""],
                         "split": ["train", "test", "", "", "", ""]}
    assert f.failed_entries == ["images/missing.png"]
    assert f.failed == [str(dataset / "images" / "missing.png")]
    assert f.quality_ckpt == str(ckpts["quality"].resolve()) and f.content_ckpt
    # The same image listed twice has one feature, twice.
    np.testing.assert_array_equal(f.quality[1], f.quality[3])
    raw = np.load(out)
    assert raw["column_MOS"].dtype.kind == "U" and raw["quality_ckpt"].shape == ()


def test_help_version_and_usage_errors(capsys):
    for argv in (["--help"], ["extract", "--help"], ["convert", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        text = capsys.readouterr().out
        assert info.value.code == 0 and "`" not in text, argv
        if argv[0] == "extract":
            assert "exit status:" in text and "130/143" in text and "--overwrite" in text
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("reiqa 0.")
    for bad in (["--max-pixels", "-5"], ["--max-pixels", "0"], ["--batch-pixels", "1x"],
                ["--batch-size", "0"]):
        with pytest.raises(SystemExit) as info:
            cli.main(["extract", "--quality-ckpt", "q", "-o", "o.npz", *bad, "x.png"])
        err = capsys.readouterr().err
        assert info.value.code == 2 and "error: argument" in err and "Traceback" not in err
        # the message fits the option named (no --batch-pixels-sized example for a count)
        assert f"argument {bad[0]}: expected a whole number of at least 1" in err, err


def test_checkpoint_problems_are_one_line_errors(ckpts, folder, tmp_path, capsys):
    image = str(sorted(folder.iterdir())[0])
    pth = tmp_path / "quality_aware_r50.pth"
    pth.write_bytes(b"PK\x03\x04 not really")
    code = cli.main(["extract", "--quality-ckpt", str(pth), "-o", str(tmp_path / "o"), image])
    line = _one_error_line(capsys.readouterr().err, code)
    assert "is a file" in line and f"reiqa convert {pth}" in line
    # NaN weights (a diverged run saves them; loading refuses them), and a tampered reiqa.json
    model = build_model(ARCH, random_arrays(ARCH, 3))
    kernel = model.encoder.layer2[0].conv1.kernel
    kernel.set_value(kernel.get_value().at[0, 0, 0, 0].set(np.nan))
    nan_dir = Path(save_model(tmp_path / "nan", model))
    code = cli.main(["extract", "--quality-ckpt", str(nan_dir), "-o", str(tmp_path / "o"), image])
    line = _one_error_line(capsys.readouterr().err, code)
    assert "NaN or Inf" in line and "encoder/layer2/0/conv1/kernel" in line
    # A tampered reiqa.json (every kind of damage: test_checkpoint.py) is named in one line.
    bad = Path(save_model(tmp_path / "tampered", build_model(ARCH, random_arrays(ARCH, 4))))
    (bad / "reiqa.json").write_bytes(b"\xff\xfe\x00garbage")
    code = cli.main(["extract", "--content-ckpt", str(bad), "-o", str(tmp_path / "o"), image])
    line = _one_error_line(capsys.readouterr().err, code)
    assert f"content checkpoint {bad}: " in line and "unreadable" in line
    assert not list(tmp_path.glob("o*"))


def test_a_checkpoint_of_the_other_branch_is_refused_in_one_line(folder, tmp_path, capsys):
    image = str(sorted(folder.iterdir())[0])
    trained = {}
    for seed, branch in enumerate(("quality", "content")):  # as reiqa train / export write them
        trained[branch] = Path(save_model(tmp_path / f"{branch}_run",
                                          build_model(ARCH, random_arrays(ARCH, seed)),
                                          meta={"source": "reiqa train", "branch": branch}))
    before = sorted(tmp_path.iterdir())
    for given, other in (("content", "quality"), ("quality", "content")):
        code = cli.main(["extract", f"--{given}-ckpt", str(trained[other]), "-o",
                         str(tmp_path / "o.npz"), image])
        line = _one_error_line(capsys.readouterr().err, code)
        assert line == (f"reiqa extract: error: --{given}-ckpt {trained[other]}: "
                        f"{trained[other]} is a {other} encoder (its reiqa.json says branch: "
                        f"{other}), not a {given} one; give it as --{other}-ckpt")
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_decompression_bombs_are_skipped_at_the_documented_limit_without_warnings(
        ckpts, folder, tmp_path, capsys):
    limit = 89_478_485  # PIL's limit, the --max-pixels default its help quotes
    with pytest.raises(SystemExit):
        cli.main(["extract", "--help"])
    assert f"limit, {limit}" in " ".join(capsys.readouterr().out.split())
    bombs = {tmp_path / "over.png": (9_500, 9_500), tmp_path / "twice_over.png": (14_000, 13_000)}
    for path, size in bombs.items():
        Image.new("1", size).save(path)
    image = sorted(folder.iterdir())[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = cli.main(_argv(ckpts, tmp_path / "o.npz", image, *bombs))
    err = capsys.readouterr().err
    assert code == 1 and "Warning" not in err and not caught
    for path, (width, height) in bombs.items():
        assert (f"reiqa extract: skipped {path}: image has {width}x{height} = "
                f"{width * height} pixels, more than the limit of {limit} ") in err
    assert load_features(tmp_path / "o.npz").failed == [str(path) for path in bombs]


def test_damaged_checkpoint_data_is_one_line_even_at_exit(ckpts, folder, tmp_path):
    damaged = tmp_path / "damaged"
    save_model(damaged, build_model(ARCH, random_arrays(ARCH, 6)))
    for data in (damaged / "state").rglob("ocdbt.process_0/d/*"):
        data.write_bytes(data.read_bytes()[:10])
    image = str(sorted(folder.iterdir())[0])
    result = subprocess.run([sys.executable, "-m", "reiqa_jax.cli", "extract", "--quality-ckpt",
                             str(damaged), "-o", str(tmp_path / "o.npz"), image],
                            capture_output=True, text=True, timeout=120)
    line = _one_error_line(result.stderr, result.returncode)
    assert "cannot read" in line and "Event loop" not in result.stderr


def test_broken_links_and_fifos_in_a_folder_are_reported_not_dropped_or_hung(ckpts, tmp_path,
                                                                            capsys):
    root = tmp_path / "photos"
    root.mkdir()
    photo("astronaut", (40, 32)).save(root / "a.png")
    (root / "b_dangling.jpg").symlink_to(root / "gone.jpg")
    os.mkfifo(root / "c_fifo.png")
    (root / "d_link_to_folder").symlink_to(tmp_path / "more")
    (tmp_path / "more").mkdir()
    photo("coffee", (40, 32)).save(tmp_path / "more" / "e.png")
    code = cli.main(_argv(ckpts, tmp_path / "o.npz", root))
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    f = load_features(tmp_path / "o.npz")
    assert f.entries == [f"{root}/a.png", f"{root}/d_link_to_folder/e.png"]
    assert f.failed_entries == [f"{root}/b_dangling.jpg", f"{root}/c_fifo.png"]
    assert "broken symbolic link" in f.errors[0] and "FIFO" in f.errors[1]
