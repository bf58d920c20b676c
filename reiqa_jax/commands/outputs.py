"""What ``reiqa regress`` and ``reiqa evaluate`` write, checked before anything is computed.

Not a subcommand: the two share their output options here, so that each is
written once. ``--out DIR`` holds the report (report.json, scatter.png: each
replaced through a temporary name); ``--save MODEL_DIR`` a model folder for
``reiqa score``, refitted on all images after the protocol.
"""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from reiqa_jax.errors import ReiqaError
from reiqa_jax.output_paths import unwritable_parent


class OutputError(ReiqaError, ValueError):
    """An output path that cannot be used; the message is one line."""


def add_save_arguments(p) -> None:
    p.add_argument("--save", type=Path, metavar="MODEL_DIR",
                   help="also refit the chosen regressor on all images and write a model "
                        "folder for reiqa score")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing MODEL_DIR (an earlier model folder)")


def check_folder(path: Path, option: str) -> Path:
    """An output folder that exists or can be made: not a file, its nearest
    existing parent a writable folder. Makes nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file; give a folder")
    parent = unwritable_parent(path)
    if parent is not None:
        raise OutputError(f"cannot write {option} {path}: {parent} is not a writable folder")
    return path


def check_evaluate_folder(path: Path, option: str = "--out") -> Path:
    """An output folder of ``reiqa evaluate``: new, empty, or one an earlier run
    wrote to (holding its report, its feature cache or its dataset build, which
    the run reuses or replaces). A folder of other things (e.g. the dataset's
    own, whose scores.csv the run would replace) is never written into."""
    from reiqa_jax.output_paths import check_output_folder
    from reiqa_jax.scoring.evaluate import FEATURES_DIR

    return check_output_folder(path, kind="reiqa evaluate",
                               marker=("report.json", FEATURES_DIR, "tfds"), overwrite=True,
                               error=OutputError, label=f"{option} ", what="output")


def check_report_folder(path: Path, option: str = "--out") -> Path:
    """A report folder: new, empty, or one an earlier report was written to
    (holding report.json), whose report.json and scatter.png are replaced. A
    folder of other things is never written into. Makes nothing."""
    from reiqa_jax.output_paths import check_output_folder

    return check_output_folder(path, kind="report", marker="report.json", overwrite=True,
                               error=OutputError, label=f"{option} ")


@dataclasses.dataclass
class ModelSave:
    """A checked ``--save``: where the model folder goes and the encoders it copies."""

    target: Path
    sources: dict[str, Path]
    overwrite: bool

    def write(self, prog: str, features, scores, result, names: Sequence[str],
              meta: Mapping) -> None:
        """Refits ``result``'s chosen regressor on all of ``features`` (N, D) /
        ``scores`` (N,) and writes the model folder; says so on stderr."""
        from reiqa_jax.scoring.model_dir import make_model_dir
        from reiqa_jax.scoring.protocol import fit_final

        regressor = fit_final(features, scores, result, feature_names=names)
        make_model_dir(self.target, regressor, quality_ckpt=self.sources.get("quality"),
                       content_ckpt=self.sources.get("content"), overwrite=self.overwrite,
                       meta=dict(meta))
        print(f"{prog}: model ({regressor.model}, alpha={regressor.alpha:g}, fitted on "
              f"{regressor.n_train} images) -> {self.target}", file=sys.stderr)


def check_save(args, names: Sequence[str], checkpoints: Mapping[str, object],
               report_dir: Path | None) -> ModelSave | None:
    """The ``--save`` of ``args``, checked (None when not given): a folder that may
    be written (new, empty, or an earlier model folder with --overwrite), apart
    from the report folder, and readable checkpoints of the encoders ``names``."""
    from reiqa_jax.scoring.model_dir import check_model_target, checkpoint_sources

    if args.save is None:
        return None
    target = check_model_target(args.save, overwrite=args.overwrite)
    if report_dir is not None:
        save, report = target.resolve(), Path(report_dir).resolve()
        if save == report or save.is_relative_to(report) or report.is_relative_to(save):
            raise OutputError(f"--save {args.save} and the report folder {report_dir} must be "
                              f"apart (neither inside the other)")
    sources = checkpoint_sources(names, quality_ckpt=checkpoints.get("quality"),
                                 content_ckpt=checkpoints.get("content"))
    return ModelSave(target=target, sources=sources, overwrite=args.overwrite)
