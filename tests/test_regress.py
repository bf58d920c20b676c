"""`reiqa regress` as a user runs it: the table and report, and every bad input in one line."""

import json


from reiqa_jax import cli
from scoring_testing import linear_data, write_npz


def test_regress_cli(tmp_path, capsys):
    x, y, groups = linear_data(n=120, d=16, n_groups=12)
    names = [f"img{i:03d}.png" for i in range(len(y))]
    write_npz(tmp_path / "f.npz", x[:, :8], x[:, 8:], names)
    lines = ["path,score,group"] + [f"{n},{s},{g}" for n, s, g in zip(names, y, groups)]
    lines.append("not_extracted.png,3,g99")
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    argv = ["regress", str(tmp_path / "f.npz"), str(tmp_path / "scores.csv"), "--out", str(out),
            "--splits", "3", "--models", "ridge", "--no-progress"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "median" in captured.out and "SRCC" in captured.out
    assert "1 of 121 score rows have no features" in captured.err
    assert "not_extracted.png" in captured.err
    report = json.loads((out / "report.json").read_text())
    assert report["n_images"] == 120 and report["n_splits"] == 3 and report["n_groups"] == 12
    assert report["features"] == ["content", "quality"] and report["srcc_median"] > 0.8
    assert report["left_out"]["no_features"] == ["not_extracted.png"]
    # the same command again replaces the earlier report in its folder
    assert cli.main(argv) == 0 and sorted(p.name for p in out.iterdir()) == ["report.json",
                                                                            "scatter.png"]
    capsys.readouterr()
    # --save without recorded checkpoints: a one-line error naming the override flag.
    assert cli.main(argv + ["--save", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert "--quality-ckpt" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "model").exists()
    # Usage errors are one line too.
    assert cli.main(["regress", str(tmp_path / "nope.npz"), str(tmp_path / "scores.csv"),
                     "--out", str(out)]) == 2
    assert "cannot read features" in capsys.readouterr().err


def _data(tmp_path, n=60, d=8):
    x, y, groups = linear_data(n=n, d=d, n_groups=12)
    names = [f"img{i:03d}.png" for i in range(len(y))]
    write_npz(tmp_path / "f.npz", x[:, : d // 2], x[:, d // 2:], names)
    (tmp_path / "scores.csv").write_text(
        "path,score\n" + "".join(f"{n},{s}\n" for n, s in zip(names, y)))
    return tmp_path / "f.npz", tmp_path / "scores.csv", names


def _one_line(capsys, status, expected, code=2):
    err = capsys.readouterr().err
    assert status == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reiqa regress: error: "), err
    assert expected in err and "Traceback" not in err, err


def test_outputs_are_checked_before_the_protocol(tmp_path, capsys, monkeypatch):
    from reiqa_jax.scoring import protocol

    feats, scores, _ = _data(tmp_path)

    def no_protocol(*args, **kwargs):
        raise AssertionError("the protocol ran before the outputs were checked")

    monkeypatch.setattr(protocol, "run_protocol", no_protocol)
    (tmp_path / "a_file").write_text("mine")
    mine = tmp_path / "my_folder"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    ckpts = ["--quality-ckpt", str(tmp_path), "--content-ckpt", str(tmp_path)]
    cases = [
        (["--out", str(tmp_path / "a_file")], "is a file"),
        (["--out", str(tmp_path / "a_file" / "deeper")], "is not a writable folder"),
        (["--out", str(tmp_path / "r"), "--save", str(mine), *ckpts], "is not a model folder"),
        (["--out", str(tmp_path / "r"), "--save", str(mine), "--overwrite", *ckpts],
         "is not a model folder"),
        (["--out", str(tmp_path / "r"), "--save", str(tmp_path / "a_file"), *ckpts], "is a file"),
        (["--out", str(tmp_path / "r"), "--save", str(tmp_path / "r"), *ckpts], "must be apart"),
        (["--out", str(tmp_path / "r"), "--save", str(tmp_path / "m"), *ckpts],
         "not a reiqa-jax checkpoint"),
        (["--out", str(tmp_path / "r"), "--models", "lasso"], "models must be among"),
        (["--out", str(mine)], "is not a report folder"),  # e.g. the user's image folder
    ]
    for extra, expected in cases:
        status = cli.main(["regress", str(feats), str(scores), "--no-progress", *extra])
        _one_line(capsys, status, expected)
    assert (tmp_path / "a_file").read_text() == "mine" and (mine / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


def test_bad_inputs_are_one_line(tmp_path, capsys):
    feats, scores, names = _data(tmp_path)
    out = ["--out", str(tmp_path / "r"), "--no-progress", "--models", "ridge"]
    # Arguments the wrong way round: named as such, not "pickled (object) data".
    _one_line(capsys, cli.main(["regress", str(scores), str(feats), *out]), "wrong way round")
    (tmp_path / "other.csv").write_text("x\n")
    _one_line(capsys, cli.main(["regress", str(tmp_path / "other.csv"), str(scores), *out]),
              "is not a features .npz")
    _one_line(capsys, cli.main(["regress", str(feats), str(feats), *out]),
              "is a numpy file, not a scores CSV")
    # Scores that are all equal: no correlation to measure, so no report with NaN medians.
    (tmp_path / "flat.csv").write_text("path,score\n" + "".join(f"{n},3\n" for n in names))
    _one_line(capsys, cli.main(["regress", str(feats), str(tmp_path / "flat.csv"), *out]),
              "all 60 scores are equal")
    assert not (tmp_path / "r").exists()


def test_sigterm_stops_between_splits_in_one_line(tmp_path):
    """As a process: SIGTERM during the protocol -> one line, exit 143, nothing written."""
    import signal
    import subprocess
    import sys

    x, y, _ = linear_data(n=3000, d=256, n_groups=3000, seed=1)
    names = [f"img{i:04d}.png" for i in range(len(y))]
    write_npz(tmp_path / "f.npz", x[:, :128], x[:, 128:], names)
    (tmp_path / "scores.csv").write_text(
        "path,score\n" + "".join(f"{n},{s}\n" for n, s in zip(names, y)))
    process = subprocess.Popen(
        [sys.executable, "-m", "reiqa_jax.cli", "regress", str(tmp_path / "f.npz"),
         str(tmp_path / "scores.csv"), "--out", str(tmp_path / "r"), "--models", "ridge",
         "--splits", "50"], stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    seen = b""
    while b"splits" not in seen:  # the progress bar: the protocol has begun
        chunk = process.stderr.read1(4096)
        assert chunk, f"regress ended before its protocol: {seen!r}"
        seen += chunk
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    err = (seen + err).decode()
    assert process.returncode == 143, err
    assert "reiqa regress: stopped by SIGTERM; nothing written" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()
