"""``reiqa evaluate``: one row of the Re-IQA paper's table, from the dataset's files."""
from __future__ import annotations

import sys
from pathlib import Path

from reiqa_jax.datasets import DATASETS  # the registry only: no TFDS import here
from reiqa_jax.dtypes import INFERENCE_DTYPES
from reiqa_jax.errors import error, one_line

HELP = "SRCC/PLCC of encoders on an IQA dataset, beside the paper's numbers"
DATASET_NAMES = tuple(DATASETS)
DESCRIPTION = f"""\
Checks encoders on an IQA dataset the way the Re-IQA paper does: reads the
dataset's labels from its official files in --manual_dir, extracts features
(cached in the output folder, so a second or interrupted run extracts only
what is missing), runs the protocol of reiqa regress (10 random 70/10/20
splits, disjoint by reference image on the synthetic datasets LIVE, CSIQ,
TID2013 and KADID-10k) and prints the median SRCC and PLCC beside the paper's.

DATASET: {', '.join(DATASET_NAMES)}
(usual spellings such as KonIQ-10k, LIVE-FB or FLIVE work too). iqa_csv is any
folder holding a scores.csv with the columns path,score[,group].

Which files go in --manual_dir, and where to get them:
  reiqa evaluate DATASET --instructions

Writes to --out: report.json, scatter.png, features.npz and scores.csv (the
inputs of reiqa regress, to rerun the protocol by hand), the feature cache
and the dataset build.

Example:
  reiqa evaluate kadid10k --quality-ckpt ckpt/quality --content-ckpt ckpt/content \\
      --manual_dir ~/data/kadid10k"""


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("dataset", metavar="DATASET", help="which dataset (see above)")
    p.add_argument("--instructions", action="store_true",
                   help="print which files DATASET needs in --manual_dir, and exit")
    p.add_argument("--quality-ckpt", type=Path, metavar="DIR",
                   help="quality-aware encoder checkpoint folder (from reiqa convert)")
    p.add_argument("--content-ckpt", type=Path, metavar="DIR",
                   help="content-aware encoder checkpoint folder (from reiqa convert)")
    p.add_argument("--manual_dir", "--manual-dir", dest="manual_dir", type=Path, metavar="DIR",
                   help="folder holding the dataset's official files")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder (default: out/evaluate/DATASET)")
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="where the dataset build is kept (default: OUT/tfds)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="images per device step (same-size images are batched)")
    p.add_argument("--dtype", choices=INFERENCE_DTYPES, default="float32",
                   help="compute dtype of the encoders")
    p.add_argument("--shorter-side", type=int, default=None, metavar="PIXELS",
                   help="scale images so their shorter side has this many pixels first "
                        "(default: 512 for SPAQ, unchanged elsewhere; 0 = unchanged)")
    p.add_argument("--lower-is-better", action="store_true",
                   help="for iqa_csv: the scores are DMOS-like (lower = better)")
    p.add_argument("--models", default="ridge,elasticnet",
                   help="regressors to search (default: ridge,elasticnet; ridge alone is "
                        "much faster)")
    p.add_argument("--splits", type=int, default=10, help="number of random splits (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits (default 0)")
    p.add_argument("--save", type=Path, metavar="MODEL_DIR",
                   help="also refit on all images and write a model folder for reiqa score")
    p.add_argument("--overwrite", action="store_true", help="replace an existing MODEL_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    from reiqa_jax.cpu_devices import use_cpu_devices

    use_cpu_devices()  # before JAX starts: two encoders side by side on CPU

    from reiqa_jax import datasets

    try:
        spec = datasets.spec(args.dataset)
    except datasets.UnknownDataset as exc:
        return error("reiqa evaluate", str(exc))
    if args.instructions:
        print(f"{spec.title} ({spec.name}): put these files in --manual_dir.\n")
        print(datasets.builder_class(spec.name).MANUAL_DOWNLOAD_INSTRUCTIONS)
        return 0
    if args.manual_dir is None:
        return error("reiqa evaluate", f"give --manual_dir (reiqa evaluate {spec.name} "
                                       f"--instructions says what goes in it)")
    if args.quality_ckpt is None and args.content_ckpt is None:
        return error("reiqa evaluate", "give --quality-ckpt and/or --content-ckpt")
    for flag, value in (("--quality-ckpt", args.quality_ckpt), ("--content-ckpt", args.content_ckpt)):
        if value is not None and not (value / "reiqa.json").is_file():
            return error("reiqa evaluate", f"{flag} {value} is not a checkpoint folder "
                                           f"(make one with reiqa convert)")
    if not args.manual_dir.is_dir():
        return error("reiqa evaluate", f"--manual_dir {args.manual_dir} is not a folder")
    if args.batch_size < 1 or args.splits < 1:
        return error("reiqa evaluate", "--batch-size and --splits must be at least 1")
    if args.save is not None and args.save.exists() and not args.overwrite:
        return error("reiqa evaluate", f"{args.save} already exists (add --overwrite to replace it)")
    name = spec.name
    if args.lower_is_better:
        if name != "iqa_csv":
            return error("reiqa evaluate", "--lower-is-better is for iqa_csv; the other datasets "
                         "know their score direction")
    out = args.out or Path("out/evaluate") / name
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())

    import tensorflow_datasets as tfds

    from reiqa_jax.checkpoint import CheckpointError
    from reiqa_jax.datasets.core import DatasetError
    from reiqa_jax.evaluate import evaluate_dataset
    from reiqa_jax.regress import ProtocolError, fit_final, format_table

    if args.no_progress:
        tfds.disable_progress_bar()
    shorter = "default" if args.shorter_side is None else args.shorter_side
    try:
        evaluation = evaluate_dataset(
            name, args.manual_dir, quality_ckpt=args.quality_ckpt, content_ckpt=args.content_ckpt,
            out_dir=out, data_dir=args.data_dir, batch_size=args.batch_size, dtype=args.dtype,
            shorter_side=shorter, n_splits=args.splits, seed=args.seed, models=models,
            progress=not args.no_progress,
            config="labels_dmos" if args.lower_is_better else "labels")
    except DatasetError as exc:
        return error("reiqa evaluate", f"{exc} (reiqa evaluate {spec.name} --instructions "
                                       f"lists the files it needs)")
    except (ProtocolError, CheckpointError) as exc:
        return error("reiqa evaluate", str(exc))
    except OSError as exc:
        return error("reiqa evaluate", one_line(exc))
    result = evaluation.result
    paper = (spec.paper_srcc, spec.paper_plcc) if spec.paper_srcc is not None else None
    print(format_table(result, paper=paper,
                       title=f"{spec.title}: {result.n_images} images, "
                             f"{'+'.join(evaluation.report['features'])} features "
                             f"({evaluation.features.shape[1]}-d)"))
    if paper is not None:
        print(f"{spec.title}: SRCC {result.srcc_median:.3f} (paper {paper[0]:.3f}), "
              f"PLCC {result.plcc_median:.3f} (paper {paper[1]:.3f})")
    print(f"reiqa evaluate: report -> {out / 'report.json'}, {out / 'scatter.png'}",
          file=sys.stderr)
    if args.save is not None:
        from reiqa_jax.quality_model import ModelDirError, make_model_dir

        names = tuple(evaluation.report["features"])
        regressor = fit_final(evaluation.features, evaluation.records.scores[evaluation.used],
                              result, feature_names=names)
        try:
            make_model_dir(args.save, regressor, quality_ckpt=args.quality_ckpt,
                           content_ckpt=args.content_ckpt, overwrite=args.overwrite,
                           meta={"dataset": spec.name, "n_images": result.n_images,
                                 "srcc_median": result.srcc_median,
                                 "plcc_median": result.plcc_median})
        except ModelDirError as exc:
            return error("reiqa evaluate", str(exc))
        print(f"reiqa evaluate: model fitted on all {result.n_images} images -> {args.save}",
              file=sys.stderr)
    return 0
