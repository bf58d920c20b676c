"""reiqa score: quality scores of images from a model folder."""
from __future__ import annotations

import sys
from pathlib import Path

from reiqa_jax.dtypes import INFERENCE_DTYPES
from reiqa_jax.errors import error, one_line

HELP = "quality scores of images (CSV path,score; higher = better)"
DESCRIPTION = """\
Scores images with a model folder made by reiqa regress --save (or
reiqa evaluate --save): both Re-IQA encoders and the regressor. Writes a CSV
with the columns path,score to OUT.csv (or to the screen); higher scores mean
better quality, whatever the training scores were. An image that cannot be
read is named on stderr and gets an empty score in the CSV.

Exit status: 0 all images scored, 1 some could not be scored, 2 usage error.

Example:
  reiqa score photos/ more.jpg --model my_model -o scores.csv"""


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively) or .csv/.txt lists")
    p.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR",
                   help="model folder from reiqa regress --save")
    p.add_argument("-o", "--output", type=Path, metavar="OUT.csv",
                   help="output CSV (default: print to the screen)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="images per device step (same-size images are batched)")
    p.add_argument("--dtype", choices=INFERENCE_DTYPES, default="float32",
                   help="compute dtype (default float32, as the regressor was fitted)")
    p.add_argument("--exif-transpose", action="store_true",
                   help="rotate images upright by their EXIF orientation first")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images with more pixels (default: PIL's bomb limit)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from reiqa_jax.cpu_devices import use_cpu_devices

    use_cpu_devices()  # before JAX starts: two encoders side by side on CPU

    from reiqa_jax.inputs import InputError, expand_image_inputs
    from reiqa_jax.quality_model import ModelDirError, load_quality_model, write_scores_csv

    if args.batch_size < 1:
        return error("reiqa score", "--batch-size must be at least 1")
    try:
        model = load_quality_model(args.model)
        expanded = expand_image_inputs(args.inputs, "reiqa score")
    except (ModelDirError, InputError) as exc:
        return error("reiqa score", str(exc))

    def warn(path: str, message: str) -> None:
        from tqdm.auto import tqdm
        tqdm.write(f"reiqa score: cannot score {path}: {message}", file=sys.stderr)

    try:
        rows = model.score_paths(expanded.paths, batch_size=args.batch_size, dtype=args.dtype,
                                 exif_transpose=args.exif_transpose, max_pixels=args.max_pixels,
                                 progress=not args.no_progress, on_error=warn)
    except ModelDirError as exc:
        return error("reiqa score", str(exc))
    try:
        write_scores_csv(rows, args.output)
    except OSError as exc:
        return error("reiqa score", f"cannot write {args.output}: {one_line(exc)}")
    failed = sum(row.score is None for row in rows)
    where = f" -> {args.output}" if args.output else ""
    print(f"reiqa score: {len(rows) - failed} of {len(rows)} image(s) scored{where}"
          + (f", {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
