"""reiqa regress: the Re-IQA regression protocol on extracted features."""
from __future__ import annotations

import sys
from pathlib import Path

from reiqa_jax.errors import ReiqaError, error, one_line

HELP = "fit and evaluate the quality regressor on features + subjective scores"
DESCRIPTION = """\
Joins subjective scores to features from reiqa extract and runs the Re-IQA
protocol: 10 random 70/10/20 train/validation/test splits (disjoint by group
when the CSV has a group column), Ridge and ElasticNet with the penalty chosen
by validation SRCC, test SRCC and PLCC (after a 4-parameter logistic fit, and
raw). Prints a table and writes OUT/report.json and OUT/scatter.png (replacing
an earlier report there). Output folders are checked before the protocol runs.

SCORES.csv has the columns path,score[,group] (header optional). Each path is
matched to the features first as written (as it was given to reiqa extract),
then as a file path relative to the CSV's folder. Rows with no features are
counted and named on stderr. Give group (e.g. the reference image of a
synthetically distorted dataset) so that no content is in both training and
test.

--save MODEL_DIR refits the chosen regressor on all images, puts its
predictions on the scale of the scores (a least-squares line; no ranking
changes) and writes a model folder for reiqa score: the regressor as plain
arrays plus copies of the two encoder checkpoints that made the features
(recorded in FEATURES.npz by reiqa extract, or given with --quality-ckpt /
--content-ckpt). An existing MODEL_DIR is replaced only with --overwrite, and
only when it is a model folder.

Ctrl-C or SIGTERM stops after the current split (exit 130 / 143; nothing is
written); a second one stops at once.

Example:
  reiqa extract --quality-ckpt ckpt/quality --content-ckpt ckpt/content \\
      -o feats.npz scores.csv
  reiqa regress feats.npz scores.csv --out report --save my_model"""

FEATURE_CHOICES = ("auto", "reiqa", "quality", "content")


def add_arguments(p) -> None:
    import argparse

    from reiqa_jax.commands.outputs import add_save_arguments

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("features_file", type=Path, metavar="FEATURES.npz",
                   help="features written by reiqa extract")
    p.add_argument("scores_file", type=Path, metavar="SCORES.csv",
                   help="subjective scores: path,score[,group]")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for report.json and scatter.png: new, empty, or an earlier "
                        "report's (replaced); a folder of other things is refused")
    add_save_arguments(p)
    p.add_argument("--quality-ckpt", type=Path, metavar="DIR",
                   help="quality encoder checkpoint for --save (default: the one recorded "
                        "in FEATURES.npz)")
    p.add_argument("--content-ckpt", type=Path, metavar="DIR",
                   help="content encoder checkpoint for --save (default: the one recorded "
                        "in FEATURES.npz)")
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
    from reiqa_jax.scoring.features import FEATURE_ORDER

    wanted = {"reiqa": FEATURE_ORDER, "quality": ("quality",), "content": ("content",),
              "auto": tuple(n for n in FEATURE_ORDER if n in available)}[choice]
    missing = [n for n in wanted if n not in available]
    if missing:
        return f"the features file has no {' or '.join(missing)} features (see --features)"
    return wanted


def run(args) -> int:
    from reiqa_jax.interrupts import StopSignals
    from reiqa_jax.scoring.protocol import Stopped

    with StopSignals("reiqa regress", "stopping after the current split",
                     verbose=sys.stderr.isatty()) as stop:
        try:
            return _run(args, stop)
        except ReiqaError as exc:
            return error("reiqa regress", str(exc), exc.status)
        except Stopped:
            print(f"reiqa regress: stopped by {stop.name}; nothing written", file=sys.stderr)
            return stop.exit_status


def _run(args, stop) -> int:
    from reiqa_jax.commands.outputs import check_report_folder, check_save
    from reiqa_jax.scoring.features import is_numpy_file, load_features
    from reiqa_jax.scoring.protocol import candidate_grid, run_protocol
    from reiqa_jax.scoring.report import format_table, write_report
    from reiqa_jax.scoring.scores_csv import join_scores, read_scores_csv

    if args.splits < 1:
        return error("reiqa regress", "--splits must be at least 1")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    candidate_grid(models)  # an unknown model: one line now, not after the features load
    check_report_folder(args.out)
    if is_numpy_file(args.scores_file) and not is_numpy_file(args.features_file):
        return error("reiqa regress", f"{args.scores_file} is a numpy file and "
                     f"{args.features_file} is not: the arguments are the wrong way round "
                     f"(reiqa regress FEATURES.npz SCORES.csv)")
    features = load_features(args.features_file)
    rows = read_scores_csv(args.scores_file)
    names = feature_names(args.features, features.blocks)
    if isinstance(names, str):
        return error("reiqa regress", names)
    given = {"quality": args.quality_ckpt, "content": args.content_ckpt}
    checkpoints = {n: given[n] or features.checkpoints[n] for n in given}
    missing = [n for n in names if not checkpoints[n]]
    if args.save is not None and missing:
        return error("reiqa regress", f"{args.features_file} does not record which "
                     f"checkpoints made its {' and '.join(missing)} features; give "
                     f"{' and '.join(f'--{n}-ckpt' for n in missing)} with --save")
    save = check_save(args, names, checkpoints, args.out)
    joined = join_scores(features, rows)
    for line in joined.left_out(len(rows.entries)):
        print(f"reiqa regress: {line}", file=sys.stderr)
    if joined.index.size == 0:
        return error("reiqa regress", f"no row of {args.scores_file} matches an image in "
                     f"{args.features_file}")
    x = features.matrix(names)[joined.index]
    result = run_protocol(x, joined.scores, joined.groups, n_splits=args.splits,
                          seed=args.seed, models=models,
                          higher_is_better=not args.lower_is_better, names=joined.names,
                          progress=not args.no_progress, should_stop=lambda: bool(stop.received))
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
    if save is not None and stop.received:
        print(f"reiqa regress: stopped by {stop.name}; the report is written, the model "
              f"folder is not", file=sys.stderr)
        return stop.exit_status
    if save is not None:
        save.write("reiqa regress", x, joined.scores, result, names,
                   meta={"scores_file": str(args.scores_file.resolve()),
                         "features_file": str(args.features_file.resolve()),
                         "n_images": int(joined.index.size),
                         "srcc_median": result.srcc_median, "plcc_median": result.plcc_median})
    return 0
