"""reiqa regress: the Re-IQA regression protocol on extracted features."""
from __future__ import annotations

import sys
from pathlib import Path

from reiqa_jax.errors import error, one_line

HELP = "fit and evaluate the quality regressor on features + subjective scores"
DESCRIPTION = """\
Joins subjective scores to features from reiqa extract and runs the Re-IQA
protocol: 10 random 70/10/20 train/validation/test splits (disjoint by group
when the CSV has a group column), Ridge and ElasticNet with the penalty chosen
by validation SRCC, test SRCC and PLCC (after a 4-parameter logistic fit, and
raw). Prints a table and writes OUT/report.json and OUT/scatter.png.

SCORES.csv has the columns path,score[,group] (header optional). Each path is
matched to the features first as written (as it was given to reiqa extract),
then as a file path relative to the CSV's folder. Rows with no features are
counted and named on stderr. Give group (e.g. the reference image of a
synthetically distorted dataset) so that no content is in both training and
test.

--save MODEL_DIR refits the chosen regressor on all images and writes a model
folder for reiqa score: the regressor as plain arrays plus copies of the two
encoder checkpoints that made the features (recorded in FEATURES.npz by
reiqa extract, or given with --quality-ckpt / --content-ckpt).

Example:
  reiqa extract --quality-ckpt ckpt/quality --content-ckpt ckpt/content \\
      -o feats.npz scores.csv
  reiqa regress feats.npz scores.csv --out report --save my_model"""

FEATURE_CHOICES = ("auto", "reiqa", "quality", "content")


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("features_file", type=Path, metavar="FEATURES.npz",
                   help="features written by reiqa extract")
    p.add_argument("scores_file", type=Path, metavar="SCORES.csv",
                   help="subjective scores: path,score[,group]")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for report.json and scatter.png")
    p.add_argument("--save", type=Path, metavar="MODEL_DIR",
                   help="also write a model folder for reiqa score")
    p.add_argument("--quality-ckpt", type=Path, metavar="DIR",
                   help="quality encoder checkpoint for --save (default: the one recorded "
                        "in FEATURES.npz)")
    p.add_argument("--content-ckpt", type=Path, metavar="DIR",
                   help="content encoder checkpoint for --save (default: the one recorded "
                        "in FEATURES.npz)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing MODEL_DIR")
    p.add_argument("--features", choices=FEATURE_CHOICES, default="auto",
                   help="which features: reiqa = content + quality (the paper's), quality, "
                        "content; auto = reiqa when both are in the file, else the one there")
    p.add_argument("--models", default="ridge,elasticnet",
                   help="regressors to search, comma-separated (default: ridge,elasticnet; "
                        "ridge alone is much faster)")
    p.add_argument("--splits", type=int, default=10, help="number of random splits (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits (default 0)")
    p.add_argument("--lower-is-better", action="store_true",
                   help="the scores are DMOS-like (lower = better quality); saved models "
                        "still output higher = better")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def feature_names(choice: str, available) -> tuple[str, ...] | str:
    """The feature blocks for --features, or an error message."""
    from reiqa_jax.regress import FEATURE_ORDER

    wanted = {"reiqa": FEATURE_ORDER, "quality": ("quality",), "content": ("content",),
              "auto": tuple(n for n in FEATURE_ORDER if n in available)}[choice]
    missing = [n for n in wanted if n not in available]
    if missing:
        return f"the features file has no {' or '.join(missing)} features (see --features)"
    return wanted


def report_left_out(command: str, joined, total: int) -> None:
    """The CSV rows that were not used, on stderr: counts and a few names."""
    from reiqa_jax.checkpoint import few

    for label, names in (("have no features in the .npz", joined.unmatched),
                         ("failed extraction", joined.failed),
                         ("repeat an image already scored (first kept)", joined.duplicates)):
        if names:
            print(f"reiqa {command}: {len(names)} of {total} score rows {label}: {few(names, 5)}",
                  file=sys.stderr)


def run(args) -> int:
    from reiqa_jax.regress import (ProtocolError, fit_final, format_table, join_scores,
                                   read_features, read_scores_csv, run_protocol, write_report)

    if args.splits < 1:
        return error("reiqa regress", "--splits must be at least 1")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    try:
        features = read_features(args.features_file)
        rows = read_scores_csv(args.scores_file)
        names = feature_names(args.features, features.blocks)
    except ProtocolError as exc:
        return error("reiqa regress", str(exc))
    if isinstance(names, str):
        return error("reiqa regress", names)
    if args.save is not None:
        checkpoints = {"quality": args.quality_ckpt or features.checkpoints["quality"],
                       "content": args.content_ckpt or features.checkpoints["content"]}
        missing = [n for n in names if not checkpoints[n]]
        if missing:
            return error("reiqa regress", f"{args.features_file} does not record which checkpoints made "
                         f"its {' and '.join(missing)} features; give "
                         f"{' and '.join(f'--{n}-ckpt' for n in missing)} with --save")
        if args.save.exists() and not args.overwrite:
            return error("reiqa regress", f"{args.save} already exists (add --overwrite to replace it)")
    joined = join_scores(features, rows)
    report_left_out("regress", joined, len(rows.entries))
    if joined.index.size == 0:
        return error("reiqa regress", f"no row of {args.scores_file} matches an image in "
                     f"{args.features_file}")
    x = features.matrix(names)[joined.index]
    higher_is_better = not args.lower_is_better
    try:
        result = run_protocol(x, joined.scores, joined.groups, n_splits=args.splits,
                              seed=args.seed, models=models, higher_is_better=higher_is_better,
                              names=joined.names, progress=not args.no_progress)
    except ProtocolError as exc:
        return error("reiqa regress", str(exc))
    extra = {"features": list(names), "features_file": str(args.features_file),
             "scores_file": str(args.scores_file),
             "left_out": {"no_features": joined.unmatched, "failed": joined.failed,
                          "duplicates": joined.duplicates}}
    try:
        write_report(result, args.out, extra=extra, title=args.scores_file.name)
    except OSError as exc:
        return error("reiqa regress", f"cannot write the report: {one_line(exc)}")
    print(format_table(result, title=f"{args.scores_file} x {args.features_file} "
                                     f"({'+'.join(names)}, {x.shape[1]}-d)"))
    print(f"reiqa regress: report -> {args.out / 'report.json'}, {args.out / 'scatter.png'}",
          file=sys.stderr)
    if args.save is not None:
        from reiqa_jax.quality_model import ModelDirError, make_model_dir

        regressor = fit_final(x, joined.scores, result, feature_names=names)
        try:
            make_model_dir(args.save, regressor, quality_ckpt=checkpoints["quality"],
                           content_ckpt=checkpoints["content"], overwrite=args.overwrite,
                           meta={"scores_file": str(args.scores_file.resolve()),
                                 "features_file": str(args.features_file.resolve()),
                                 "n_images": int(joined.index.size),
                                 "srcc_median": result.srcc_median,
                                 "plcc_median": result.plcc_median})
        except ModelDirError as exc:
            return error("reiqa regress", str(exc))
        print(f"reiqa regress: model ({regressor.model}, alpha={regressor.alpha:g}, fitted on "
              f"{joined.index.size} images) -> {args.save}", file=sys.stderr)
    return 0
