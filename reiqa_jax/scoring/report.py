"""What the protocol measured, for people: a table, ``report.json`` and a scatter plot.

``format_table`` prints every split and the medians (and the paper's numbers
when given); ``small_test_note`` says when the test parts are too small for
their SRCC to mean much; ``write_report`` writes ``report.json`` and
``scatter.png`` (the test images of the median split against their scores,
with the fitted logistic), each through a temporary name moved into place.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from reiqa_jax import metrics
from reiqa_jax.scoring.protocol import ProtocolResult

# Below this many test images a split's SRCC is uncertain by more than about
# +-0.2 (95 %); the paper's smallest test parts hold 156 images (LIVE).
SMALL_TEST = 100


def small_test_note(result: ProtocolResult) -> str | None:
    """A sentence when the smallest test part has fewer than SMALL_TEST images, else None.

    The width is that of a 95 % interval of a correlation near 0 from n pairs
    (Fisher's z with the 1.06 factor for Spearman's rho: 1.96 * 1.06 / sqrt(n - 3)).
    """
    fewest = result.n_test[0]
    if fewest >= SMALL_TEST:
        return None
    if fewest <= 3:
        return (f"only {fewest} test images per split: far too few for an SRCC to mean "
                f"anything")
    width = min(1.0, 1.96 * 1.06 / math.sqrt(fewest - 3))
    return (f"only {fewest} test images per split: an SRCC from so few is uncertain by "
            f"about +-{width:.2f} (95 %); the paper's test splits hold 156 images or more")


def format_table(result: ProtocolResult, *, paper: tuple[float, float] | None = None,
                 title: str = "") -> str:
    """A plain-text table of the per-split and median numbers (and the paper's, if given)."""
    lines = []
    if title:
        lines.append(title)
    lines.append(f"{'split':>6} {'n_test':>7} {'SRCC':>7} {'PLCC':>7} {'PLCC raw':>9}  chosen")
    for s in result.splits:
        lines.append(f"{s.index:>6} {s.test.size:>7} {s.srcc:>7.4f} {s.plcc:>7.4f} "
                     f"{s.plcc_raw:>9.4f}  {s.chosen.label()}")
    undefined = (f", {result.n_undefined} without a defined SRCC left out"
                 if result.n_undefined else "")
    lines.append(f"{'median':>6} {'':>7} {result.srcc_median:>7.4f} {result.plcc_median:>7.4f} "
                 f"{result.plcc_raw_median:>9.4f}  ({result.n_images} images, "
                 f"{result.n_splits} splits{undefined})")
    if paper is not None:
        lines.append(f"{'paper':>6} {'':>7} {paper[0]:>7.3f} {paper[1]:>7.3f}")
    note = small_test_note(result)
    if note:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def write_report(result: ProtocolResult, out_dir, *, extra: dict | None = None,
                 title: str = "") -> dict:
    """Writes ``out_dir/report.json`` and ``out_dir/scatter.png``; returns the report dict.

    ``extra`` entries are added to the JSON. Each file is written under a
    temporary name and moved into place, replacing the previous report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = result.to_json()
    note = small_test_note(result)
    report["small_test_splits"] = note
    if extra:
        report.update(extra)
    split = result.splits[result.median_split]
    if result.names is not None:
        report["median_split_test"] = [
            {"name": result.names[i], "score": float(result.scores[i]), "prediction": float(p)}
            for i, p in zip(split.test, split.test_prediction)]
    tmp = out_dir / f".report.json.tmp-{os.getpid()}"
    try:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, out_dir / "report.json")
        tmp = out_dir / f".scatter.png.tmp-{os.getpid()}"
        _scatter(result, tmp, title=title)
        os.replace(tmp, out_dir / "scatter.png")
    finally:
        tmp.unlink(missing_ok=True)
    return report


def _scatter(result: ProtocolResult, path: Path, *, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    split = result.splits[result.median_split]
    prediction, y = split.test_prediction, result.scores[split.test]
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=120)
    ax.scatter(prediction, y, s=10, alpha=0.6, edgecolors="none")
    try:
        fit = metrics.logistic_fit(prediction, y)
        grid = np.linspace(prediction.min(), prediction.max(), 200)
        label = ("4-parameter logistic fit" if fit.converged else
                 "straight-line fit (the logistic did not fit)")
        ax.plot(grid, fit(grid), color="C3", lw=1.5, label=label)
        ax.legend(loc="best", fontsize=8)
    except ValueError:
        pass
    ax.set_xlabel("predicted score")
    ax.set_ylabel("subjective score (" + ("MOS" if result.higher_is_better else "DMOS") + ")")
    heading = f"{title}\n" if title else ""
    ax.set_title(f"{heading}test images of the median split ({split.index}): "
                 f"SRCC {split.srcc:.3f}, PLCC {split.plcc:.3f}, {split.test.size} images",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
