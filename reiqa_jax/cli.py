"""The ``reiqa`` command: ``extract``, ``convert`` and ``demo``.

Each subcommand is a thin layer over a Python API (``reiqa_jax.extract``,
``reiqa_jax.convert``, ``reiqa_jax.demo``); errors a user can fix are printed
as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DTYPES = ("float32", "bfloat16")


def _error(command: str, message: str) -> int:
    print(f"reiqa {command}: error: {message}", file=sys.stderr)
    return 2


def _extract_parser(sub) -> None:
    p = sub.add_parser(
        "extract", help="Re-IQA features of images into an .npz file",
        description="Computes Re-IQA features as the released demos do (full + half scale, "
                    "eval mode) and writes paths, quality and/or content features, and the "
                    "inputs that failed, to OUT.npz.")
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


def _run_extract(args) -> int:
    from reiqa_jax.checkpoint import CheckpointError, load_model
    from reiqa_jax.extract import FeatureExtractor
    from reiqa_jax.images import DEFAULT_MAX_PIXELS
    from reiqa_jax.inputs import InputError, expand_inputs

    if args.quality_ckpt is None and args.content_ckpt is None:
        return _error("extract", "give --quality-ckpt and/or --content-ckpt")
    if args.batch_size < 1:
        return _error("extract", "--batch-size must be at least 1")
    try:
        expanded = expand_inputs(args.inputs)
    except InputError as exc:
        return _error("extract", str(exc))
    if expanded.skipped:
        print(f"reiqa extract: skipped {len(expanded.skipped)} file(s) without an image "
              f"extension in the input folders", file=sys.stderr)
    if not expanded.paths:
        return _error("extract", "no images found in the inputs")
    import jax.numpy as jnp

    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[args.dtype]
    models = {}
    for name, directory in (("quality", args.quality_ckpt), ("content", args.content_ckpt)):
        if directory is not None:
            try:
                models[name] = load_model(directory, dtype=dtype)
            except (CheckpointError, FileNotFoundError) as exc:
                return _error("extract", f"{name} checkpoint {directory}: {exc}")
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


def _demo_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="end-to-end run on photos bundled with scikit-image (no download)",
        description="Writes photos bundled with scikit-image, makes untrained (seeded) "
                    "ResNet-50 checkpoints unless real ones are given, and extracts "
                    "Re-IQA features for the photos.")
    p.add_argument("--workdir", type=Path, default=Path("out/demo"))
    p.add_argument("--quality-ckpt", type=Path, help="use this checkpoint instead of an untrained one")
    p.add_argument("--content-ckpt", type=Path, help="use this checkpoint instead of an untrained one")
    p.add_argument("--dtype", choices=DTYPES, default="float32")


def _run_demo(args) -> int:
    from reiqa_jax.demo import run_demo

    return run_demo(args.workdir, quality_ckpt=args.quality_ckpt,
                    content_ckpt=args.content_ckpt, dtype=args.dtype)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "convert":
        from reiqa_jax.convert import main as convert_main

        return convert_main(argv[1:], prog="reiqa convert")
    parser = argparse.ArgumentParser(prog="reiqa", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _extract_parser(sub)
    _demo_parser(sub)
    sub.add_parser("convert", help="convert PyTorch checkpoints to ours and back "
                                   "(see `reiqa convert --help`)", add_help=False)
    args = parser.parse_args(argv)
    return {"extract": _run_extract, "demo": _run_demo}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
