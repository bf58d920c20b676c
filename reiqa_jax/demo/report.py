"""The demo's report: ``demo_report.json``, the printed summary, ``demo.png``, the README table.

The report is plain JSON (what ``reiqa demo`` measured, with the date and the
machine); the README's demo table is :func:`readme_table` of a committed
report (``benchmarks/demo_readme.py`` writes it, a test checks the two agree).
"""
from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone

import numpy as np

FORMAT = "reiqa-demo-report"
README_BEGIN = "<!-- demo-table:begin (benchmarks/demo_readme.py writes this) -->"
README_END = "<!-- demo-table:end -->"


def machine() -> dict:
    """The machine the demo ran on: CPU model, cores, OS, Python, JAX and its devices."""
    import jax

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__,
            "devices": [str(d.device_kind) for d in jax.devices()]}


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def metrics_near(rows: list[dict], step: int, window: int) -> dict:
    """Mean loss / top-1 of the logged steps in (step - window, step], step 1
    left out of later points (its loss is against a queue of random keys, not
    comparable with the later ones); None when no such step was logged (step
    0, or a run too short for its log interval) rather than a value from
    outside the window."""
    near = [r for r in rows if step - window < r["step"] <= step
            and (r["step"] > 1 or step == 1)]
    if not near:
        return {"loss": None, "top1": None, "logged_steps": []}
    return {"loss": float(np.mean([r["loss"] for r in near])),
            "top1": float(np.mean([r["acc"] for r in near])),
            "logged_steps": [int(r["step"]) for r in near]}


def _num(value, width: int, digits: int) -> str:
    """``value`` formatted, or a dash (right-aligned to ``width``) for None."""
    return f"{value:{width}.{digits}f}" if value is not None else "-".rjust(width)


def random_summary(per_seed: dict[int, dict]) -> dict:
    """Mean / min / max over the random-init seeds of SRCC, PLCC and within-series SRCC."""
    srcc = [v["srcc"] for v in per_seed.values()]
    plcc = [v["plcc"] for v in per_seed.values()]
    series = [v["series_srcc_mean"] for v in per_seed.values()]
    kinds = next(iter(per_seed.values()))["series_srcc"]
    return {"seeds": [int(s) for s in per_seed], "srcc": srcc, "srcc_mean": float(np.mean(srcc)),
            "srcc_min": float(min(srcc)), "srcc_max": float(max(srcc)),
            "plcc_mean": float(np.mean(plcc)), "series_srcc_mean": float(np.mean(series)),
            "series_srcc": {k: float(np.mean([v["series_srcc"][k] for v in per_seed.values()]))
                            for k in kinds},
            "per_split_srcc_mean": [float(x) for x in np.mean(
                [v["per_split_srcc"] for v in per_seed.values()], axis=0)],
            "per_seed": {str(s): v for s, v in per_seed.items()}}


def example_summary(photo: str, scores: dict, kinds) -> dict:
    """The example photo's scores: {pristine: s, kind: [level 0..4]} -> checks per kind."""
    from reiqa_jax import metrics
    from reiqa_jax.demo.iqa_set import score_of

    above = {k: bool(scores["pristine"] > scores[k][4]) for k in kinds}
    labels = [score_of(-1)] + [score_of(level) for level in range(5)]
    series = {k: float(metrics.srcc(np.array([scores["pristine"]] + list(scores[k])),
                                    np.array(labels))) for k in kinds}
    return {"photo": photo, "scores": scores, "pristine_above_strongest": above,
            "pristine_above_strongest_all": all(above.values()), "series_srcc": series,
            "series_srcc_mean": float(np.mean(list(series.values())))}


def summary_rows(report: dict) -> list[tuple[str, float, float, float]]:
    """(name, SRCC, PLCC, within-series SRCC) of every feature set, in table order."""
    t, r, c = report["trained"], report["random_init"], report["classical"]
    rows = [(f"trained encoder ({report['train_steps']} steps)", t["srcc"], t["plcc"],
             t["series_srcc_mean"]),
            (f"same network, random init ({len(r['seeds'])} seeds, mean)", r["srcc_mean"],
             r["plcc_mean"], r["series_srcc_mean"])]
    rows.append(("classical statistics combined", c["combined"]["srcc"], c["combined"]["plcc"],
                 c["combined"]["series_srcc_mean"]))
    for name in ("mean_gradient_magnitude", "laplacian_variance", "rms_contrast"):
        rows.append((name.replace("_", " "), c[name]["srcc"], c[name]["plcc"],
                     c[name]["series_srcc_mean"]))
    return rows


def score_digits(scores) -> int:
    """Decimals that show the spread of ``scores``: 3, or more when they differ
    only further down (a strongly regularised regressor's scores can all lie
    within 0.01 of each other; their order is what the example shows)."""
    spread = float(np.ptp(scores)) if len(scores) else 0.0
    if not np.isfinite(spread) or spread <= 0:
        return 3
    return int(min(8, max(3, np.ceil(-np.log10(spread)) + 2)))


def print_summary(report: dict, out_dir) -> None:
    r = report["random_init"]
    print(f"\nOn {report['n_images']} images of {len(report['photos']['test'])} held-out photos "
          f"({report['n_scenes']} scenes; {len(report['kinds'])} kinds x 5 levels + pristine): "
          f"median of {report['n_splits']} splits by scene, {report['test_scenes_per_split']} "
          f"test scenes each")
    print(f"  {'features':52s} {'SRCC':>6s} {'PLCC':>6s} {'within series':>14s}")
    for name, srcc, plcc, series in summary_rows(report):
        print(f"  {name:52s} {srcc:6.3f} {plcc:6.3f} {series:14.3f}")
    print(f"  random init range over seeds {r['seeds']}: SRCC {r['srcc_min']:.3f} .. "
          f"{r['srcc_max']:.3f}")
    print(f"  trained - random-init mean: {report['margin_over_random']:+.3f}; trained ahead of "
          f"classical combined on {report['splits_ahead_of_classical']} of {report['n_splits']} "
          f"splits")
    print(f"  {backwards_line(report)}")
    print(f"  {every_kind_line(report)}")
    print("\nlearning curve (held-out SRCC beside training loss and top-1 %):")
    for point in report["curve"]:
        print(f"  step {point['step']:5d} ({point['fraction']:4.0%}): SRCC {point['srcc']:6.3f}  "
              f"within series {point['series_srcc_mean']:6.3f}  loss {_num(point['loss'], 5, 3)}"
              f"  top-1 {_num(point['top1'], 5, 1)}")
    ex = report["example"]
    digits = score_digits([ex["scores"]["pristine"]]
                          + [v for k in report["kinds"] for v in ex["scores"][k]])
    print(f"\n{ex['photo']} (held out from training and from the regressor), scored by "
          f"`reiqa score --model {out_dir / 'model'}`: pristine "
          f"{ex['scores']['pristine']:.{digits}f}")
    for kind in report["kinds"]:
        levels = " ".join(f"{s:{digits + 3}.{digits}f}" for s in ex["scores"][kind])
        print(f"  {kind:16s} levels 0-4: {levels}   SRCC {ex['series_srcc'][kind]:6.3f}"
              f"{'' if ex['pristine_above_strongest'][kind] else '   (level 4 >= pristine)'}")
    print(f"\nreport: {out_dir / 'demo_report.json'}   plot: {out_dir / 'demo.png'}   "
          f"scores: {out_dir / 'scored_examples.csv'}")


def plot(report: dict, metrics_rows: list[dict], path) -> None:
    """demo.png: learning curve, loss / top-1, per-split SRCC, per-kind SRCC, example scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    r, c = report["random_init"], report["classical"]["combined"]
    steps = [p["step"] for p in report["curve"]]

    ax = axes[0, 0]
    ax.plot(steps, [p["srcc"] for p in report["curve"]], "o-", color="C0",
            label="trained encoder (held-out SRCC)")
    ax.plot(steps, [p["series_srcc_mean"] for p in report["curve"]], "s--", color="C0",
            alpha=0.6, label="same, within one series")
    ax.axhspan(r["srcc_min"], r["srcc_max"], color="C7", alpha=0.25,
               label=f"random init, {len(r['seeds'])} seeds (range)")
    ax.axhline(r["srcc_mean"], color="C7")
    ax.axhline(c["srcc"], color="C3", ls=":", label="classical statistics combined")
    ax.set_xlabel("training step")
    ax.set_ylabel("median SRCC over splits")
    ax.set_title("quality on held-out photos along training")
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[0, 1]
    s = [m["step"] for m in metrics_rows]
    ax.plot(s, [m["loss"] for m in metrics_rows], color="C1", label="InfoNCE loss")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss", color="C1")
    ax2 = ax.twinx()
    ax2.plot(s, [m["acc"] for m in metrics_rows], color="C2", alpha=0.8, label="top-1 %")
    ax2.set_ylabel("top-1 % (positive key first)", color="C2")
    for step in steps:
        ax.axvline(step, color="C7", lw=0.5, ls=":")
    ax.set_title("training loss and top-1 (dotted: curve points)")

    ax = axes[0, 2]
    trained = report["trained"]["per_split_srcc"]
    x = np.arange(len(trained))
    ax.plot(x, trained, "o-", color="C0", label="trained encoder")
    ax.plot(x, c["per_split_srcc"], "s-", color="C3", label="classical combined")
    ax.plot(x, r["per_split_srcc_mean"], "^-", color="C7", label="random init (mean of seeds)")
    ax.set_xlabel("split (test scenes differ)")
    ax.set_ylabel("test SRCC")
    ax.set_title(f"per split: trained ahead of classical on {report['splits_ahead_of_classical']}"
                 f" of {len(trained)}")
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    kinds = report["kinds"]
    x = np.arange(len(kinds))
    ax.bar(x - 0.27, [report["trained"]["series_srcc"][k] for k in kinds], 0.27, color="C0",
           label="trained")
    ax.bar(x, [r["series_srcc"][k] for k in kinds], 0.27, color="C7", label="random init")
    ax.bar(x + 0.27, [c["series_srcc"][k] for k in kinds], 0.27, color="C3",
           label="classical combined")
    ax.set_xticks(x, kinds, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("SRCC within one series")
    ax.set_title("per kind: does it order the 5 levels (and pristine)?")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    ex = report["example"]
    for i, kind in enumerate(kinds):
        ax.plot(range(-1, 5), [ex["scores"]["pristine"]] + list(ex["scores"][kind]), "o-",
                color=plt.cm.tab10(i % 10), label=kind, ms=3)
    ax.set_xticks(range(-1, 5), ["pristine", "0", "1", "2", "3", "4"])
    ax.set_xlabel("distortion level")
    ax.set_ylabel("score (reiqa score)")
    ax.set_title(f"{ex['photo']}: scores of the demo's model (held-out photo)")
    ax.legend(fontsize=7, ncol=2)

    ax = axes[1, 2]
    split = report["trained_median_split"]
    ax.scatter(split["true"], split["predicted"], s=12, alpha=0.6)
    ax.set_xlabel("label (5 = pristine, 4 - level)")
    ax.set_ylabel("predicted")
    ax.set_title(f"trained encoder, median split (test: {', '.join(split['scenes'])})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def readme_table(report: dict) -> str:
    """The README's demo table (markdown) from a report, with its date and machine."""
    m = report["machine"]
    r = report["random_init"]
    load = m.get("load_average", [])
    # the demo alone keeps every core busy: a load well above the core count is others'
    shared = (f"; the machine was shared with other jobs (1-minute load average "
              f"{min(load):.1f} to {max(load):.1f}), so the time is inflated"
              if load and max(load) > m["cores"] + 1 else "")
    lines = [
        f"Measured by `reiqa demo` (training seed {report['train_seed']}) on {m['cpu']}, "
        f"{m['cores']} cores, {report['created']}: {report['seconds']['total'] / 60:.1f} min in "
        f"all{shared} (`benchmarks/demo_report.json`). {report['n_images']} images: "
        f"{len(report['photos']['test'])} held-out photos x ({len(report['kinds'])} kinds x 5 "
        f"levels + pristine); median of {report['n_splits']} splits by scene "
        f"({report['test_scenes_per_split']} test scenes each).",
        "",
        "| features | SRCC | PLCC | SRCC within one series |",
        "|---|---:|---:|---:|",
    ]
    for name, srcc, plcc, series in summary_rows(report):
        bold = name.startswith("trained")
        cell = f"**{srcc:.3f}**" if bold else f"{srcc:.3f}"
        lines.append(f"| {name} | {cell} | {plcc:.3f} | {series:.3f} |")
    fractions = " / ".join(f"{p['fraction']:.0%}" for p in report["curve"])
    curve = " / ".join(f"{p['srcc']:.3f}" for p in report["curve"])
    loss = " / ".join(_num(p["loss"], 0, 2) for p in report["curve"])
    top1 = " / ".join(_num(p["top1"], 0, 0) for p in report["curve"])
    ex = report["example"]
    lines += [
        "",
        f"Random init over seeds {', '.join(str(s) for s in r['seeds'])}: SRCC "
        f"{r['srcc_min']:.3f} to {r['srcc_max']:.3f}; trained minus their mean "
        f"{report['margin_over_random']:+.3f}. Trained ahead of the classical statistics "
        f"combined on {report['splits_ahead_of_classical']} of {report['n_splits']} splits.",
        f"Learning curve at {fractions} of "
        f"training: SRCC {curve}; loss {loss}; top-1 % {top1}.",
        f"`reiqa score` on {ex['photo']} (held out from the encoder's training and from the "
        f"regressor): pristine above level 4 for "
        f"{sum(ex['pristine_above_strongest'].values())} of {len(report['kinds'])} kinds; "
        f"SRCC of its scores within each kind's series: mean {ex['series_srcc_mean']:.3f}, "
        f"lowest {min(ex['series_srcc'].values()):.3f} "
        f"({min(ex['series_srcc'], key=ex['series_srcc'].get)}).",
    ]
    return "\n".join(lines)


def write_report(report: dict, path) -> None:
    with open(path, "w") as f:
        f.write(json.dumps(report, indent=1) + "\n")


def seeds_line(seeds: list[dict]) -> str:
    """One sentence on the spread over training seeds (``benchmarks/demo_seeds.json`` rows)."""
    srcc = np.array([s["srcc"] for s in seeds])
    margin = np.array([s["margin"] for s in seeds])
    ahead = sum(s["splits_ahead"] for s in seeds)
    total = sum(s["n_splits"] for s in seeds)
    examples = sum(s["example_pristine_above_all"] for s in seeds)
    return (f"Over training seeds {', '.join(str(s['seed']) for s in seeds)} "
            f"(`benchmarks/demo_seeds.json`, `benchmarks/RESULTS.md`): trained SRCC "
            f"{', '.join(f'{v:.3f}' for v in srcc)}; margin over the random-init mean "
            f"{', '.join(f'{v:+.3f}' for v in margin)}; ahead of the classical statistics "
            f"combined on {ahead} of {total} splits; the example photo's pristine picture "
            f"above every kind's level 4 in {examples} of {len(seeds)} runs, and, over every "
            f"test photo of every split, for "
            f"{', '.join(format(s['every_kind_rate'], '.0%') for s in seeds)} of the photos "
            f"(classical statistics combined: {seeds[0]['every_kind_rate_classical']:.0%}).")


def read_backwards(series_srcc: dict[str, float]) -> str:
    """The kinds whose mean SRCC within one series is below 0, lowest first
    ("jpeg -0.220, pixelate -0.190"), or "none"."""
    below = sorted((v, k) for k, v in series_srcc.items() if v < 0)
    return ", ".join(f"{k} {v:.3f}" for v, k in below) or "none"


def backwards_line(report: dict) -> str:
    """One sentence: per feature set, the kinds whose severity the protocol's
    predictions rank backwards within a series (every test photo of every split)."""
    combined = report["classical"]["combined"]["series_srcc"]
    return (f"Kinds ranked backwards within their series (mean SRCC within one series "
            f"below 0, over every test photo of every split): trained encoder "
            f"{read_backwards(report['trained']['series_srcc'])}; random init (mean of "
            f"{len(report['random_init']['seeds'])} seeds) "
            f"{read_backwards(report['random_init']['series_srcc'])}; classical statistics "
            f"combined {read_backwards(combined)}.")


def every_kind_line(report: dict) -> str:
    """One sentence: how often a test photo's pristine picture is predicted above
    the strongest level of every kind at once (the example check's pass rate
    over every test photo of every split), per feature set."""
    key = "pristine_above_every_kind"
    random = [v[key] for v in report["random_init"]["per_seed"].values()]
    return (f"Pristine picture predicted above the strongest level of all "
            f"{len(report['kinds'])} kinds at once (what the example checks, over every test "
            f"photo of every split): trained encoder {report['trained'][key]:.0%}; random init "
            f"{', '.join(f'{v:.0%}' for v in random)}; classical statistics combined "
            f"{report['classical']['combined'][key]:.0%}.")


def readme_block(report: dict, seeds: list[dict]) -> str:
    """The README's generated demo block: the table of one report, the kinds read
    backwards, the example check's pass rate and the seeds' spread."""
    return (readme_table(report) + "\n" + backwards_line(report) + "\n" + every_kind_line(report)
            + "\n\n" + seeds_line(seeds))


def load_committed(folder) -> tuple[dict, list[dict]]:
    """The committed report and seed summary in ``folder`` (benchmarks/)."""
    from pathlib import Path

    folder = Path(folder)
    report = json.loads((folder / "demo_report.json").read_text())
    seeds = json.loads((folder / "demo_seeds.json").read_text())
    return report, seeds
