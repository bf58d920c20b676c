"""``reiqa evaluate``: one row of the Re-IQA paper's table, from the dataset's files."""
from __future__ import annotations

import sys
from pathlib import Path

from reiqa_jax.datasets import DATASETS  # the registry only: no TFDS import here
from reiqa_jax.dtypes import INFERENCE_DTYPES
from reiqa_jax.errors import ReiqaError, error, one_line

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
and the dataset build. Both caches follow their inputs: edited label files
rebuild the dataset, a changed image file or checkpoint is extracted again.
The report says how many test images each split has, and when that is too
few for its SRCC to mean much.

Exit status: 0 every image used, 1 some images could not be read (named on
stderr and in report.json), 2 usage error, 130/143 stopped by SIGINT/SIGTERM
(the finished features are kept: run the same command again to go on).

Example:
  reiqa evaluate kadid10k --quality-ckpt ckpt/quality --content-ckpt ckpt/content \\
      --manual_dir ~/data/kadid10k"""


def add_arguments(p) -> None:
    import argparse

    from reiqa_jax.commands.outputs import add_save_arguments

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
                   help="output folder (default: out/evaluate/DATASET): new, empty, or an "
                        "earlier run's, whose caches are reused; a folder of other things is "
                        "refused")
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
    add_save_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    from reiqa_jax.cpu_devices import use_cpu_devices

    use_cpu_devices()  # before JAX starts: two encoders side by side on CPU

    from reiqa_jax.interrupts import StopSignals
    from reiqa_jax.scoring.protocol import Stopped

    with StopSignals("reiqa evaluate", "stopping after the current batch or split",
                     verbose=sys.stderr.isatty()) as stop:
        try:
            return _run(args, stop)
        except Stopped as exc:
            print(f"reiqa evaluate: stopped by {stop.name}; {exc}; run the same command "
                  f"again to go on", file=sys.stderr)
            return stop.exit_status
        except ReiqaError as exc:
            return error("reiqa evaluate", str(exc), exc.status)


def _run(args, stop) -> int:
    from reiqa_jax import datasets
    from reiqa_jax.commands.outputs import check_evaluate_folder, check_folder, check_save
    from reiqa_jax.scoring.protocol import candidate_grid

    spec = datasets.spec(args.dataset)
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
    for flag, value in (("--batch-size", args.batch_size), ("--splits", args.splits)):
        if value < 1:
            return error("reiqa evaluate", f"{flag} must be at least 1")
    name = spec.name
    if args.lower_is_better and name != "iqa_csv":
        return error("reiqa evaluate", "--lower-is-better is for iqa_csv; the other datasets "
                     "know their score direction")
    out = check_evaluate_folder(args.out or Path("out/evaluate") / name)
    if args.data_dir is not None:
        check_folder(args.data_dir, "--data-dir")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    candidate_grid(models)  # an unknown model: one line now, not after the features
    names = tuple(n for n, c in (("content", args.content_ckpt), ("quality", args.quality_ckpt))
                  if c)
    save = check_save(args, names, {"quality": args.quality_ckpt, "content": args.content_ckpt},
                      out)

    import tensorflow_datasets as tfds

    from reiqa_jax.datasets.core import DatasetError
    from reiqa_jax.scoring.evaluate import evaluate_dataset
    from reiqa_jax.scoring.report import format_table, small_test_note

    if args.no_progress:
        tfds.disable_progress_bar()
    shorter = "default" if args.shorter_side is None else args.shorter_side
    made = not out.exists()
    try:
        evaluation = evaluate_dataset(
            name, args.manual_dir, quality_ckpt=args.quality_ckpt, content_ckpt=args.content_ckpt,
            out_dir=out, data_dir=args.data_dir, batch_size=args.batch_size, dtype=args.dtype,
            shorter_side=shorter, n_splits=args.splits, seed=args.seed, models=models,
            progress=not args.no_progress, should_stop=lambda: bool(stop.received),
            config="labels_dmos" if args.lower_is_better else "labels")
    except DatasetError as exc:
        if made:  # the labels could not be read: nothing of value, leave no folder behind
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        return error("reiqa evaluate", f"{exc} (reiqa evaluate {spec.name} --instructions "
                                       f"lists the files it needs)")
    except OSError as exc:
        return error("reiqa evaluate", one_line(exc))
    result = evaluation.result
    paper = (spec.paper_srcc, spec.paper_plcc) if spec.paper_srcc is not None else None
    print(format_table(result, paper=paper,
                       title=f"{spec.title}: {result.n_images} images, "
                             f"{'+'.join(evaluation.report['features'])} features "
                             f"({evaluation.features.shape[1]}-d)"))
    if paper is not None:
        fewest, most = result.n_test
        size = f"{fewest}" if fewest == most else f"{fewest}-{most}"
        caution = "; too few to compare" if small_test_note(result) else ""
        print(f"{spec.title}: SRCC {result.srcc_median:.3f} (paper {paper[0]:.3f}), "
              f"PLCC {result.plcc_median:.3f} (paper {paper[1]:.3f}); {size} test images "
              f"per split{caution}")
    print(f"reiqa evaluate: report -> {out / 'report.json'}, {out / 'scatter.png'}",
          file=sys.stderr)
    if save is not None:
        save.write("reiqa evaluate", evaluation.features,
                   evaluation.records.scores[evaluation.used], result, names,
                   meta={"dataset": spec.name, "n_images": result.n_images,
                         "srcc_median": result.srcc_median, "plcc_median": result.plcc_median})
    failed = evaluation.report["n_failed"]
    if failed:
        print(f"reiqa evaluate: {failed} image(s) could not be read (named above and in "
              f"{out / 'report.json'})", file=sys.stderr)
    return 1 if failed else 0
