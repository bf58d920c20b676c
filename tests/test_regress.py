"""The regression protocol: splits, Ridge/ElasticNet, saved regressors, `reiqa regress`."""

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from reiqa_jax import cli, regress
from reiqa_jax.regress import Candidate, Regressor


def _linear_data(n=240, d=48, n_groups=24, seed=0, noise=0.3):
    """Features with a known linear signal, grouped like a synthetic IQA set."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32) * rng.uniform(0.5, 3, d).astype(np.float32)
    w = np.zeros(d)
    w[:8] = rng.normal(size=8)
    y = 50 + 10 * (x @ w) / np.std(x @ w) + noise * 10 * rng.normal(size=n)
    groups = np.repeat([f"ref{i:02d}" for i in range(n_groups)], n // n_groups)
    return x, y, groups


def test_splits_are_reproducible_disjoint_and_70_10_20():
    groups = np.repeat(np.arange(30), 5)
    a = regress.make_splits(150, groups, n_splits=10, seed=3)
    b = regress.make_splits(150, groups, n_splits=10, seed=3)
    c = regress.make_splits(150, groups, n_splits=10, seed=4)
    assert all(np.array_equal(p, q) for s, t in zip(a, b) for p, q in zip(s, t))
    assert not all(np.array_equal(s[0], t[0]) for s, t in zip(a, c))
    assert len({tuple(s[2]) for s in a}) == 10  # ten different test sets
    for train, val, test in a:
        assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(150))
        # Content-disjoint: no reference image in two parts.
        parts = [set(groups[idx]) for idx in (train, val, test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert (len(parts[0]), len(parts[1]), len(parts[2])) == (21, 3, 6)
    train, val, test = regress.make_splits(100, None, n_splits=1)[0]
    assert (train.size, val.size, test.size) == (70, 10, 20)
    with pytest.raises(regress.ProtocolError, match="at least 3 groups"):
        regress.make_splits(10, ["a"] * 5 + ["b"] * 5)


@pytest.mark.parametrize("n", [30, 80])  # kernel (n < d) and primal (n >= d) forms
def test_ridge_path_matches_sklearn_ridge(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 50))
    y = rng.normal(size=n)
    path = regress.RidgePath(x, y)
    for alpha in (1e-2, 1.0, 100.0):
        expected = Ridge(alpha=alpha, fit_intercept=False).fit(x, y).coef_
        np.testing.assert_allclose(path.coef(alpha), expected, rtol=1e-6, atol=1e-8)


@pytest.fixture(scope="module")
def protocol():
    x, y, groups = _linear_data()
    return x, y, groups, regress.run_protocol(x, y, groups, n_splits=4, seed=0,
                                              names=[f"img{i}.png" for i in range(len(y))])


def test_protocol_recovers_a_known_linear_signal(protocol):
    x, y, groups, result = protocol
    assert result.n_images == 240 and result.n_splits == 4 and result.n_features == 48
    assert result.srcc_median > 0.9 and result.plcc_median > 0.9
    assert result.plcc_median >= result.plcc_raw_median - 1e-3
    for split in result.splits:
        assert not set(groups[split.train]) & set(groups[split.test])
        assert split.chosen in result.grid
        assert split.test_prediction.shape == split.test.shape
    # Same inputs, same numbers (fixed seeds, deterministic solvers).
    again = regress.run_protocol(x, y, groups, n_splits=4, seed=0)
    assert [s.srcc for s in again.splits] == [s.srcc for s in result.splits]
    # No signal, no correlation.
    noise = regress.run_protocol(x, np.random.default_rng(9).normal(size=len(y)), groups,
                                 n_splits=2, models=("ridge",))
    assert abs(noise.srcc_median) < 0.4


def test_report_json_and_scatter(protocol, tmp_path):
    _, _, _, result = protocol
    report = regress.write_report(result, tmp_path, extra={"dataset": "synthetic"})
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    for key in ("srcc_median", "plcc_median", "plcc_raw_median", "n_images", "n_splits",
                "per_split", "srcc", "plcc", "chosen", "median_split"):
        assert key in saved
    assert saved["n_images"] == 240 and saved["n_splits"] == 4 and len(saved["per_split"]) == 4
    assert saved["srcc_median"] == pytest.approx(np.median(saved["srcc"]))
    assert saved["dataset"] == "synthetic"
    median = result.splits[result.median_split]
    assert len(saved["median_split_test"]) == median.test.size
    assert (tmp_path / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = regress.format_table(result, paper=(0.9, 0.91))
    assert "median" in table and "paper" in table


@pytest.mark.parametrize("candidate", [Candidate("ridge", 0.01),
                                       Candidate("elasticnet", 0.01, 0.5)])
@pytest.mark.parametrize("higher_is_better", [True, False])
def test_saved_regressor_predicts_identically(tmp_path, candidate, higher_is_better):
    x, y, _ = _linear_data(n=120)
    regressor = regress.fit_regressor(x, y, candidate, higher_is_better=higher_is_better)
    regressor.save(tmp_path)
    loaded = Regressor.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict(x), regressor.predict(x))
    np.testing.assert_array_equal(loaded.quality(x), regressor.quality(x))
    assert (loaded.model, loaded.alpha, loaded.l1_ratio) == (candidate.model, candidate.alpha,
                                                             candidate.l1_ratio)
    # Plain arrays only: loads with pickling disabled.
    with np.load(tmp_path / "regressor.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"coef", "intercept", "mean", "scale"}
    header = json.loads((tmp_path / "regressor.json").read_text())
    assert header["higher_is_better"] is higher_is_better
    # quality() is higher-is-better: for DMOS it runs against the prediction.
    quality, prediction = loaded.quality(x), loaded.predict(x)
    assert np.corrcoef(quality, prediction)[0, 1] == pytest.approx(1 if higher_is_better else -1)
    if candidate.model == "ridge":
        xs = (x - regressor.mean) / regressor.scale
        expected = Ridge(alpha=0.01 * len(y)).fit(xs, y).predict(xs)
        np.testing.assert_allclose(regressor.predict(x), expected, rtol=1e-8)


def test_fit_final_takes_the_most_chosen_candidate(protocol):
    x, y, _, result = protocol
    regressor = regress.fit_final(x, y, result)
    assert (regressor.model, regressor.alpha) == (result.chosen.model, result.chosen.alpha)
    assert regressor.n_train == len(y) and regressor.higher_is_better


def test_scores_csv_and_join(tmp_path):
    (tmp_path / "imgs").mkdir()
    csv_path = tmp_path / "scores.csv"
    csv_path.write_text("path,score,group\nimgs/a.png,1.5,r1\nimgs/b.png,2,r1\n"
                        "imgs/c.png,3,r2\nimgs/missing.png,4,r2\nimgs/bad.png,5,r3\n"
                        "imgs/a.png,9,r1\n")
    rows = regress.read_scores_csv(csv_path)
    assert rows.entries[0] == "imgs/a.png" and rows.scores.tolist() == [1.5, 2, 3, 4, 5, 9]
    assert rows.groups == ["r1", "r1", "r2", "r2", "r3", "r1"]
    assert rows.resolved[0] == str((tmp_path / "imgs" / "a.png").resolve())
    # An npz as `reiqa extract` writes it: entries as written, for a and c; b only by path.
    feats = tmp_path / "f.npz"
    np.savez(feats, paths=np.array([str(tmp_path / "imgs/a.png"), str(tmp_path / "imgs/c.png"),
                                    str(tmp_path / "imgs/b.png")]),
             entries=np.array(["imgs/a.png", "imgs/c.png", "elsewhere/b.png"]),
             quality=np.ones((3, 4), np.float32), content=np.zeros((3, 4), np.float32),
             failed=np.array([str(tmp_path / "imgs/bad.png")]),
             failed_entries=np.array(["imgs/bad.png"]), errors=np.array(["truncated"]),
             quality_ckpt=np.array("/q"), content_ckpt=np.array(""))
    features = regress.read_features(feats)
    assert features.checkpoints == {"quality": "/q", "content": ""}
    assert features.matrix(("content", "quality")).shape == (3, 8)
    joined = regress.join_scores(features, rows)
    assert joined.index.tolist() == [0, 2, 1] and joined.scores.tolist() == [1.5, 2, 3]
    assert joined.groups == ["r1", "r1", "r2"]
    assert joined.unmatched == ["imgs/missing.png"] and joined.failed == ["imgs/bad.png"]
    assert joined.duplicates == ["imgs/a.png"]
    # Today's npz (no entries) joins on resolved paths; a CSV without header works too.
    old = tmp_path / "old.npz"
    np.savez(old, paths=np.array(["imgs/c.png"]), quality=np.ones((1, 4), np.float32),
             failed=np.array([], str), errors=np.array([], str))
    plain = tmp_path / "plain.csv"
    plain.write_text("imgs/c.png,3.0\n")
    import os
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the old npz's relative paths are relative to where extract ran
    try:
        joined = regress.join_scores(regress.read_features(old), regress.read_scores_csv(plain))
    finally:
        os.chdir(cwd)
    assert joined.index.tolist() == [0] and joined.groups is None
    bad = tmp_path / "bad.csv"
    bad.write_text("path,score\na.png,good\n")
    with pytest.raises(regress.ProtocolError, match="not a number"):
        regress.read_scores_csv(bad)


def test_protocol_refuses_what_it_cannot_split():
    with pytest.raises(regress.ProtocolError, match="at least 10"):
        regress.run_protocol(np.ones((5, 3)), np.arange(5.0))
    with pytest.raises(regress.ProtocolError, match="models"):
        regress.run_protocol(np.ones((20, 3)), np.arange(20.0), models=("lasso",))


def _write_npz(path, x_content, x_quality, entries, ckpts=("", "")):
    np.savez(path, paths=np.array(entries), entries=np.array(entries),
             content=x_content.astype(np.float32), quality=x_quality.astype(np.float32),
             failed=np.array([], str), failed_entries=np.array([], str),
             errors=np.array([], str), quality_ckpt=np.array(ckpts[0]),
             content_ckpt=np.array(ckpts[1]))


def test_regress_cli(tmp_path, capsys):
    x, y, groups = _linear_data(n=120, d=16, n_groups=12)
    names = [f"img{i:03d}.png" for i in range(len(y))]
    _write_npz(tmp_path / "f.npz", x[:, :8], x[:, 8:], names)
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
    # --save without recorded checkpoints: a one-line error naming the override flag.
    assert cli.main(argv + ["--save", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert "--quality-ckpt" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "model").exists()
    # Usage errors are one line too.
    assert cli.main(["regress", str(tmp_path / "nope.npz"), str(tmp_path / "scores.csv"),
                     "--out", str(out)]) == 2
    assert "cannot read features" in capsys.readouterr().err
