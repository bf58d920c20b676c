"""``reiqa demo``: end-to-end run on photos bundled with scikit-image."""
from __future__ import annotations

from pathlib import Path

HELP = "end-to-end run on photos bundled with scikit-image (no download)"
DESCRIPTION = ("Writes photos bundled with scikit-image, makes untrained (seeded) "
               "ResNet-50 checkpoints unless real ones are given, and extracts "
               "Re-IQA features for the photos.")


def add_arguments(p) -> None:
    p.add_argument("--workdir", type=Path, default=Path("out/demo"))
    p.add_argument("--quality-ckpt", type=Path,
                   help="use this checkpoint instead of an untrained one")
    p.add_argument("--content-ckpt", type=Path,
                   help="use this checkpoint instead of an untrained one")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")


def run(args) -> int:
    from reiqa_jax.demo import run_demo

    return run_demo(args.workdir, quality_ckpt=args.quality_ckpt,
                    content_ckpt=args.content_ckpt, dtype=args.dtype)
