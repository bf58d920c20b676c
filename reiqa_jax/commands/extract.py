"""``reiqa extract``: Re-IQA features of images into an .npz file."""
from __future__ import annotations

import sys
from pathlib import Path

from reiqa_jax.commands import error

HELP = "Re-IQA features of images into an .npz file"
DESCRIPTION = ("Computes Re-IQA features as the released demos do (full + half scale, "
               "eval mode) and writes paths, quality and/or content features, and the "
               "inputs that failed, to OUT.npz.")
DTYPES = ("float32", "bfloat16")


def add_arguments(p) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, directories (searched recursively) or .csv/.txt lists")
    p.add_argument("--quality-ckpt", type=Path, help="quality-aware encoder checkpoint directory")
    p.add_argument("--content-ckpt", type=Path, help="content-aware encoder checkpoint directory")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .npz file")
    p.add_argument("--batch-size", type=int, default=8,
                   help="images per device step (same-shape images are batched)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="compute dtype")
    p.add_argument("--exif-transpose", action="store_true",
                   help="rotate images upright by their EXIF orientation first "
                        "(the released demos do not)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images with more pixels (default: PIL's bomb limit)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from reiqa_jax.checkpoint import CheckpointError, load_model
    from reiqa_jax.extract import FeatureExtractor
    from reiqa_jax.images import DEFAULT_MAX_PIXELS
    from reiqa_jax.inputs import InputError, expand_inputs

    if args.quality_ckpt is None and args.content_ckpt is None:
        return error("extract", "give --quality-ckpt and/or --content-ckpt")
    if args.batch_size < 1:
        return error("extract", "--batch-size must be at least 1")
    try:
        expanded = expand_inputs(args.inputs)
    except InputError as exc:
        return error("extract", str(exc))
    if expanded.skipped:
        print(f"reiqa extract: skipped {len(expanded.skipped)} file(s) without an image "
              f"extension in the input folders", file=sys.stderr)
    if not expanded.paths:
        return error("extract", "no images found in the inputs")
    import jax.numpy as jnp

    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[args.dtype]
    models = {}
    for name, directory in (("quality", args.quality_ckpt), ("content", args.content_ckpt)):
        if directory is not None:
            try:
                models[name] = load_model(directory, dtype=dtype)
            except (CheckpointError, FileNotFoundError) as exc:
                return error("extract", f"{name} checkpoint {directory}: {exc}")
    extractor = FeatureExtractor(
        quality_model=models.get("quality"), content_model=models.get("content"),
        batch_size=args.batch_size, exif_transpose=args.exif_transpose,
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS)

    def warn(path: str, message: str) -> None:
        from tqdm.auto import tqdm
        tqdm.write(f"reiqa extract: skipped {path}: {message}", file=sys.stderr)

    features = extractor.extract(expanded.paths, progress=not args.no_progress, on_error=warn)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    features.save_npz(args.output)
    print(f"reiqa extract: {len(features.paths)} image(s) -> {args.output}"
          f" ({len(features.failed)} failed)", file=sys.stderr)
    return 0 if features.paths else 1
