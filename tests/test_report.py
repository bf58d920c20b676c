"""The protocol's report: table, report.json, scatter plot, the small-test-split note."""

import json

import numpy as np
import pytest

from reiqa_jax.scoring import protocol, report as report_module
from scoring_testing import linear_data


@pytest.fixture(scope="module")
def fitted():
    x, y, groups = linear_data()
    return x, y, groups, protocol.run_protocol(x, y, groups, n_splits=4, seed=0,
                                              names=[f"img{i}.png" for i in range(len(y))])


def test_report_json_and_scatter(fitted, tmp_path):
    _, _, _, result = fitted
    report = report_module.write_report(result, tmp_path, extra={"dataset": "synthetic"})
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
    table = report_module.format_table(result, paper=(0.9, 0.91))
    assert "median" in table and "paper" in table


