"""The README's demo figures are the committed report's, as benchmarks/demo_readme.py writes them."""
from pathlib import Path

from reiqa_jax.demo.report import README_BEGIN, README_END, load_committed, readme_block

ROOT = Path(__file__).resolve().parents[1]


def test_readme_demo_block_matches_the_committed_report():
    report, seeds = load_committed(ROOT / "benchmarks")
    readme = (ROOT / "README.md").read_text()
    assert README_BEGIN in readme and README_END in readme
    shown = readme.split(README_BEGIN, 1)[1].split(README_END, 1)[0].strip("\n")
    assert shown == readme_block(report, seeds), \
        "README.md's demo block is stale: run python benchmarks/demo_readme.py"


def test_committed_report_is_a_full_demo_run():
    report, seeds = load_committed(ROOT / "benchmarks")
    assert report["format"] == "reiqa-demo-report" and report["created"].endswith("UTC")
    assert report["machine"]["cpu"] and report["machine"]["cores"] >= 1
    assert report["n_splits"] == 20 and len(report["random_init"]["seeds"]) >= 3
    assert [p["fraction"] for p in report["curve"]] == [0.0, 0.25, 0.5, 1.0]
    assert len(report["kinds"]) >= 7 and report["test_scenes_per_split"] >= 2
    assert report["train_seed"] == seeds[0]["seed"] and len(seeds) >= 3
    assert abs(seeds[0]["srcc"] - report["trained"]["srcc"]) < 1e-12


def test_kinds_ranked_backwards_are_named_lowest_first_per_feature_set():
    from reiqa_jax.demo.report import backwards_line, read_backwards

    assert read_backwards({"jpeg": -0.1, "blur": 0.8, "pixelate": -0.3, "noise": 0.0}) == \
        "pixelate -0.300, jpeg -0.100"
    assert read_backwards({"blur": 0.8}) == "none"
    report = {"trained": {"series_srcc": {"jpeg": -0.2, "blur": 0.7}},
              "random_init": {"seeds": [1, 2, 3], "series_srcc": {"jpeg": 0.1, "blur": 0.2}},
              "classical": {"combined": {"series_srcc": {"jpeg": -0.6, "blur": -0.05}}}}
    line = backwards_line(report)
    assert "trained encoder jpeg -0.200;" in line
    assert "random init (mean of 3 seeds) none;" in line
    assert "classical statistics combined jpeg -0.600, blur -0.050." in line


def test_the_example_checks_pass_rate_is_given_per_feature_set():
    from reiqa_jax.demo.report import every_kind_line

    key = "pristine_above_every_kind"
    report = {"kinds": ["jpeg", "blur"], "trained": {key: 0.25},
              "random_init": {"per_seed": {"1": {key: 0.0}, "2": {key: 0.1}}},
              "classical": {"combined": {key: 0.5}}}
    assert every_kind_line(report) == (
        "Pristine picture predicted above the strongest level of all 2 kinds at once (what "
        "the example checks, over every test photo of every split): trained encoder 25%; "
        "random init 0%, 10%; classical statistics combined 50%.")


def test_example_scores_are_printed_with_the_decimals_that_show_their_order():
    from reiqa_jax.demo.report import score_digits

    assert score_digits([1.0, 4.5]) == 3 and score_digits([2.0, 2.0]) == 3
    # the demo's example: 2.0564 .. 2.0599 (a spread of 0.0035) needs 5 decimals
    assert score_digits([2.0564279, 2.0599078]) == 5
    assert f"{2.0598041:.5f}" != f"{2.0598574:.5f}"
