"""`reiqa demo` at reduced size: train, synthetic IQA set, protocol, report, scores."""
import csv
import json
import math

from reiqa_jax.demo import run_demo


def test_demo_trains_measures_and_scores(tmp_path, capsys):
    # the real distortions have their own tests; stand-ins keep the compile short
    tiny = {"model.feat_dim": 32, "views.n_aug": 2, "input.threads": 2,
            "views.ops": "stand_in"}
    report = run_demo(tmp_path, train_steps=3, photos=("astronaut", "coffee", "camera"),
                      kinds=("jpeg", "contrast_change"), overrides=tiny, n_splits=3)
    saved = json.loads((tmp_path / "demo_report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["n_images"] == 3 * (2 * 5 + 1) and saved["train_steps"] == 3
    assert saved["distortions"] == ["jpeg", "contrast_change"]
    for name in ("srcc_trained", "srcc_random"):
        assert -1 <= saved[name] <= 1
    assert set(saved["baselines"]) == {"mean_gradient_magnitude", "laplacian_variance",
                                       "rms_contrast"}
    assert all(math.isfinite(v) for v in saved["within_type_srcc"].values())
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert (tmp_path / "train" / "metrics.jsonl").exists()
    rows = list(csv.DictReader(open(tmp_path / "scored_examples.csv")))
    assert [r["path"].rsplit("/", 1)[1] for r in rows] == (
        ["astronaut_pristine.png"] + [f"astronaut_jpeg_{k}.png" for k in range(5)])
    assert all(math.isfinite(float(r["score"])) for r in rows)
    out = capsys.readouterr().out
    assert "trained encoder" in out and "random encoder" in out and "within type" in out
