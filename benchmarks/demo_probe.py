"""Which distortion kinds an encoder's features carry, one kind at a time.

On the validation photos of ``demo_sweep.py`` (never the demo's test photos),
for each kind: its series (the pristine picture and its 5 levels) of every
photo; one photo held out at a time, a regressor fitted on the other photos'
series of that kind alone, then scored on the held-out series. Two regressors:
a plain ridge (standardised features, alpha 1; what the protocol fits, without
its search) and an RBF support-vector regressor (C 10; can bend where a line
cannot). Reported per kind: the mean SRCC within the held-out series, and the
share of photos whose pristine picture is predicted above level 4 (the demo's
example check, for that kind alone).

A kind that no regressor reads from the features is not in them; a kind that
the ridge reads here but that fails when one regressor serves all ten kinds
is lost in the pooling. As a reference that the labels can be read at all,
pixelation is also measured on two hand-made numbers (the fraction of
duplicated rows and of duplicated columns: what NEAREST down-and-up leaves).

With ``--pooled`` it asks the demo's own question instead: one regressor for
all ten kinds (ridge, and an RBF SVR that can bend where a line cannot), each
photo held out in turn, and how often the pristine picture comes out above
level 4 of each kind, and of every kind at once (the example check).

  python benchmarks/demo_probe.py --out /tmp/sweep --wallpapers WP \\
      "/tmp/sweep/mix depth10 steps1800 lr1.2 seed0/train/model" [--pooled] [--record]
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_sweep  # noqa: E402  (benchmarks/demo_sweep.py: the validation set)
from common import cpu_name, write_block  # noqa: E402

BLOCK = ("<!-- demo_probe:begin -->", "<!-- demo_probe:end -->")
POOLED_BLOCK = ("<!-- demo_probe_pooled:begin -->", "<!-- demo_probe_pooled:end -->")
KINDS = ("jpeg", "pixelate", "color_block", "gaussian_blur")


def duplicated_lines(path: str) -> list[float]:
    """Fractions of rows and of columns equal to their predecessor (all channels)."""
    from reiqa_jax.images import open_image

    a = np.asarray(open_image(path))
    return [float(np.mean(np.all(a[1:] == a[:-1], axis=(1, 2)))),
            float(np.mean(np.all(a[:, 1:] == a[:, :-1], axis=(0, 2))))]


def regressors() -> dict:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    return {"ridge": lambda: make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
            "rbf-svr": lambda: make_pipeline(StandardScaler(), SVR(C=10.0))}


def held_out_predictions(x: np.ndarray, scores: np.ndarray, photos: np.ndarray,
                         make) -> np.ndarray:
    """(N,) predictions, each row's from a regressor fitted without its photo."""
    predicted = np.empty(len(scores))
    for photo in np.unique(photos):
        test = photos == photo
        predicted[test] = make().fit(x[~test], scores[~test]).predict(x[test])
    return predicted


def leave_one_photo_out(x: np.ndarray, scores: np.ndarray, photos: np.ndarray,
                        make) -> tuple[float, float]:
    """(mean within-series SRCC, share with pristine above level 4) over held-out photos."""
    from reiqa_jax import metrics

    predicted = held_out_predictions(x, scores, photos, make)
    srcc, above = [], []
    for photo in np.unique(photos):
        test = photos == photo
        truth = scores[test]
        srcc.append(metrics.srcc(predicted[test], truth))
        above.append(predicted[test][np.argmax(truth)] > predicted[test][np.argmin(truth)])
    return float(np.nanmean(srcc)), float(np.mean(above))


def pooled_regressors() -> dict:
    """One regressor for all ten kinds: the protocol's kind (ridge) at a weak and
    a strong penalty, and an RBF support-vector regressor that can bend."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    return {"ridge alpha 1": lambda: make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
            "ridge alpha 100": lambda: make_pipeline(StandardScaler(), Ridge(alpha=100.0)),
            "rbf-svr C 1": lambda: make_pipeline(StandardScaler(), SVR(C=1.0)),
            "rbf-svr C 10": lambda: make_pipeline(StandardScaler(), SVR(C=10.0))}


def pooled(x: np.ndarray, labelled, make) -> dict:
    """One regressor fitted on every kind of the other photos, each photo held out
    in turn: per kind the share of photos whose pristine picture is predicted above
    level 4, the share where that holds for every kind at once (the demo's own
    rules, ``reiqa_jax.demo.measure``, on these predictions), and the within-series
    SRCC averaged over kinds."""
    from reiqa_jax.demo import measure

    series = measure.photo_series(
        held_out_predictions(x, labelled.scores, labelled.photos, make), labelled)
    return {"above": measure.pristine_above(series),
            "every_kind": measure.pristine_above_every_kind(series),
            "series_srcc": float(np.mean(list(measure.series_srcc(series, labelled).values())))}


def probe(features: dict[str, np.ndarray], labelled) -> list[tuple]:
    """Rows (features, kind, regressor, srcc, above) for every feature set and kind."""
    rows = []
    for name, x in features.items():
        for kind in KINDS:
            keep = labelled.kind_rows(kind)
            for reg, make in regressors().items():
                rows.append((name, kind, reg, *leave_one_photo_out(
                    x[keep], labelled.scores[keep], labelled.photos[keep], make)))
    keep = labelled.kind_rows("pixelate")
    hand = np.array([duplicated_lines(labelled.paths[i]) for i in keep])
    for reg, make in regressors().items():
        rows.append(("duplicated rows and columns (2 numbers)", "pixelate", reg,
                     *leave_one_photo_out(hand, labelled.scores[keep], labelled.photos[keep],
                                          make)))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("encoders", nargs="+", type=Path, help="encoder checkpoints (model folders)")
    p.add_argument("--out", type=Path, required=True, help="the demo_sweep folder (its "
                   "validation set is read or made there)")
    p.add_argument("--wallpapers", type=Path, default=demo_sweep.WALLPAPERS,
                   help="folder of the validation wallpapers (as demo_sweep.py)")
    p.add_argument("--classical", action="store_true",
                   help="also the demo's three classical statistics combined")
    p.add_argument("--pooled", action="store_true",
                   help="instead: one regressor for all ten kinds (ridge at two penalties, "
                        "RBF SVR at two C), each photo held out in turn; per kind the share "
                        "of photos with pristine above level 4, and every kind at once")
    p.add_argument("--record", action="store_true", help="write the table to RESULTS.md")
    args = p.parse_args(argv)
    demo_sweep.WALLPAPERS = args.wallpapers

    import jax

    from reiqa_jax.demo.measure import encoder_features

    missing = [path for path in args.encoders if not path.is_dir()]
    if missing:
        raise SystemExit(f"demo_probe: no encoder checkpoint at {missing[0]}")
    labelled = demo_sweep.validation_set(args.out)
    features = {}
    for path in args.encoders:
        name = path.parent.parent.name if path.name == "model" else path.name
        features[name] = encoder_features(labelled.paths, path).astype(np.float64)
    if args.classical:
        from reiqa_jax.demo import classical

        features["classical statistics combined"] = classical.statistics(labelled.paths)["combined"]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.pooled:
        return pooled_table(features, labelled, when, args.record)
    rows = probe(features, labelled)
    lines = [f"### One kind at a time (`benchmarks/demo_probe.py`, validation photos), {when}",
             "",
             f"{len(np.unique(labelled.photos))} validation photos, each held out in turn; "
             f"jax {jax.__version__}, CPU {cpu_name()}, {os.cpu_count()} cores.",
             "",
             "| features | kind | regressor | SRCC within the held-out series | "
             "pristine above level 4 |",
             "|---|---|---|---:|---:|"]
    lines += [f"| {n} | {k} | {r} | {s:.2f} | {a:.2f} |" for n, k, r, s, a in rows]
    text = "\n".join(lines)
    print(text)
    if args.record:
        write_block(*BLOCK, text, before="<!-- demo_seeds:begin -->")
    return 0


def pooled_table(features: dict, labelled, when: str, record: bool) -> int:
    import jax

    results = [(name, reg, pooled(x, labelled, make)) for name, x in features.items()
               for reg, make in pooled_regressors().items()]
    kinds = list(results[0][2]["above"])
    lines = [f"### All kinds, one regressor (`benchmarks/demo_probe.py --pooled`, validation "
             f"photos), {when}",
             "",
             f"{len(np.unique(labelled.photos))} validation photos, each held out in turn; one "
             f"regressor fitted on all {len(kinds)} kinds of the other photos (standardised "
             f"features); jax {jax.__version__}, CPU {cpu_name()}, {os.cpu_count()} cores. "
             "Per kind: the share of held-out photos whose pristine picture is predicted above "
             "level 4. 'every kind': the share where that holds for all kinds at once (the "
             "demo's example check).",
             "",
             "| features | regressor | SRCC within one series | every kind | "
             + " | ".join(kinds) + " |",
             "|---|---|---:|---:|" + "---:|" * len(kinds)]
    for name, reg, r in results:
        lines.append(f"| {name} | {reg} | {r['series_srcc']:.2f} | {r['every_kind']:.2f} | "
                     + " | ".join(f"{r['above'][k]:.2f}" for k in kinds) + " |")
    text = "\n".join(lines)
    print(text)
    if record:
        write_block(*POOLED_BLOCK, text, before="<!-- demo_seeds:begin -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
