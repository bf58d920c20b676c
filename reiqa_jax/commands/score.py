"""reiqa score: quality scores of images from a model folder."""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from reiqa_jax.dtypes import INFERENCE_DTYPES
from reiqa_jax.errors import ReiqaError, error, one_line
from reiqa_jax.output_paths import not_a_plain_file, unwritable_parent

HELP = "quality scores of images (CSV path,score; higher = better)"
DESCRIPTION = """\
Scores images with a model folder made by reiqa regress --save (or
reiqa evaluate --save): both Re-IQA encoders and the regressor. Writes a CSV
with the columns path,score to OUT.csv (or to the screen); higher scores mean
better quality, whatever the training scores were. An image that cannot be
read is named on stderr and gets an empty score in the CSV.

With -o, finished scores are saved as the run goes into OUT.csv.partial/;
Ctrl-C or SIGTERM stops after the current batch, and running the same command
again scores only the rest. An existing OUT.csv is replaced only with
--overwrite. On the screen, rows appear in input order as soon as they are
known (when stopped: every finished row, in input order).

Exit status: 0 all images scored, 1 some could not be scored, 2 usage error,
130/143 stopped by SIGINT/SIGTERM (with -o: finished scores kept), 141 the
reader of the screen output stopped reading (e.g. | head).

Example:
  reiqa score photos/ more.jpg --model my_model -o scores.csv"""


def add_arguments(p) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively) or .csv/.txt lists")
    p.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR",
                   help="model folder from reiqa regress --save")
    p.add_argument("-o", "--output", type=Path, metavar="OUT.csv",
                   help="output CSV (default: print to the screen)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT.csv if it exists (otherwise an error)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="reuse the scores an interrupted run with the same model saved in "
                        "OUT.csv.partial/ (default); --no-resume starts over")
    p.add_argument("--save-every", type=float, default=10.0, metavar="SECONDS",
                   help="with -o, save finished scores to OUT.csv.partial/ at least this "
                        "often (default 10)")
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

    from reiqa_jax.interrupts import StopSignals

    with StopSignals("reiqa score", "stopping after the current batch",
                     verbose=sys.stderr.isatty()) as stop:
        try:
            return _run(args, stop)
        except ReiqaError as exc:
            return error("reiqa score", str(exc), exc.status)


def _check_output(out: Path, overwrite: bool, inputs) -> str | None:
    """Why ``-o OUT`` cannot be written, or None (checked before anything is computed).

    inputs: the paths given to score: OUT is never one of them (see
    :func:`_among`), even with --overwrite, nor named as an image."""
    from reiqa_jax.inputs import IMAGE_EXTENSIONS

    if out.is_dir():
        return f"output {out} is a folder"
    special = not_a_plain_file(out)
    if special:
        return f"output {special} (without -o the scores go to the screen)"
    among = _among(out, inputs)
    if among:
        return among
    if out.suffix.lower() in IMAGE_EXTENSIONS:
        return f"output {out} is named as an image; the scores are a CSV (e.g. -o scores.csv)"
    if out.exists() and not overwrite:
        return f"output {out} exists; pass --overwrite to replace it"
    parent = unwritable_parent(out.absolute().parent)
    return None if parent is None else f"cannot write {out}: {parent} is not a writable folder"


def _among(out: Path, paths) -> str | None:
    """Why ``OUT`` may not be written when it is one of ``paths``, or None. Only
    the paths of OUT's own name are resolved (a folder may name 100,000 images)."""
    target = out.resolve()
    if any(Path(path).name == out.name and Path(path).resolve() == target for path in paths):
        return f"output {out} is one of the inputs; write the scores to another file"
    return None


def _run(args, stop) -> int:
    from reiqa_jax.inputs import expand_image_inputs
    from reiqa_jax.scoring.model_dir import load_quality_model

    if args.batch_size < 1:
        return error("reiqa score", "--batch-size must be at least 1")
    if args.max_pixels is not None and args.max_pixels < 1:
        return error("reiqa score", "--max-pixels must be at least 1")
    if not args.save_every >= 0:
        return error("reiqa score", "--save-every must be 0 or more")
    to_file = args.output is not None and str(args.output) != "-"
    if to_file:
        problem = _check_output(args.output, args.overwrite, args.inputs)
        if problem:
            return error("reiqa score", problem)
    model = load_quality_model(args.model)
    expanded = expand_image_inputs(args.inputs, "reiqa score")
    if not to_file:
        return _to_screen(args, stop, model, expanded.paths)
    problem = _among(args.output, expanded.paths)  # an image a list names, say
    if problem:
        return error("reiqa score", problem)
    return _to_file(args, stop, model, expanded.paths, args.output)


def _progress(args, total: int, initial: int = 0):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=args.no_progress, unit="img",
                file=sys.stderr)


def _warn(path: str, message: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(f"reiqa score: cannot score {path}: {message}", file=sys.stderr)


def _scores_of(args, model, todo):
    return model.iter_scores(todo, batch_size=args.batch_size, dtype=args.dtype,
                             exif_transpose=args.exif_transpose, max_pixels=args.max_pixels,
                             on_error=_warn)


def _to_file(args, stop, model, paths: list[str], out: Path) -> int:
    from reiqa_jax.scoring.features import ShardStore, fill_store, folder_fingerprint, partial_dir

    settings = {"scores_of": str(model.directory.resolve()),
                "model_fingerprint": folder_fingerprint(model.directory),
                "dtype": args.dtype, "exif_transpose": bool(args.exif_transpose)}
    store = ShardStore(partial_dir(out), settings, blocks=("score",), resume=args.resume,
                       owner="reiqa score")
    try:
        unique = list(dict.fromkeys(paths))
        todo = [path for path in unique if not store.is_done(path)]
        if len(todo) < len(unique):
            print(f"reiqa score: resuming: {len(unique) - len(todo)} of {len(unique)} image(s) "
                  f"already scored in {store.directory}", file=sys.stderr)
        stopped = False
        if todo:
            with _progress(args, len(unique), len(unique) - len(todo)) as bar:
                _, stopped = fill_store(store, _scores_of(args, model, todo), todo,
                                               should_stop=lambda: bool(stop.received),
                                               save_every=args.save_every, on_batch=bar.update)
        if stopped:
            saved = sum(store.is_done(path) for path in unique)
            print(f"reiqa score: stopped by {stop.name}; {saved} of {len(unique)} image(s) "
                  f"saved in {store.directory}; run the same command again to finish {out}",
                  file=sys.stderr)
            return stop.exit_status
        done = [path for path in unique if store.is_done(path)]
        scores = dict(zip(done, store.rows(done, {"score": 1})["score"][:, 0].tolist()))
        try:
            _write_csv(out, [(path, scores.get(path)) for path in paths])
        except OSError as exc:
            return error("reiqa score", f"cannot write {out}: {one_line(exc)} (the scores "
                         f"stay in {store.directory}; rerun to retry)")
        store.remove()
    finally:
        store.close()
        if store.directory.exists() and not store.has_shards():
            store.remove()  # nothing saved: leave no empty folder behind
    failed = sum(path not in scores for path in paths)
    print(f"reiqa score: {len(paths) - failed} of {len(paths)} image(s) scored -> {out}"
          + (f", {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def _write_csv(out: Path, rows) -> None:
    """``path,score`` rows to ``out`` through a temporary name moved into place."""
    from reiqa_jax.scoring.model_dir import format_score

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        # surrogateescape: a file name that is not UTF-8 is written back as its own
        # bytes, as on the screen
        with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["path", "score"])
            writer.writerows([path, format_score(score)] for path, score in rows)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _to_screen(args, stop, model, paths: list[str]) -> int:
    """Prints rows in input order as soon as every row before them is known (when
    stopped, the finished rows after the first unfinished one follow, in order)."""
    from reiqa_jax.scoring.model_dir import format_score

    model.encoders(args.dtype)  # a damaged encoder folder: an error before any row
    unique = list(dict.fromkeys(paths))
    scores: dict[str, float] = {}
    failed: set[str] = set()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["path", "score"])
    printed = 0
    with _progress(args, len(unique)) as bar:
        batches = _scores_of(args, model, unique)
        try:
            for result in batches:
                scores.update(zip((unique[i] for i in result.indices),
                                  result.features["score"][:, 0].tolist()))
                failed.update(unique[i] for i, _ in result.failures)
                bar.update(len(result.indices) + len(result.failures))
                while printed < len(paths) and (paths[printed] in scores
                                                or paths[printed] in failed):
                    writer.writerow([paths[printed], format_score(scores.get(paths[printed]))])
                    printed += 1
                sys.stdout.flush()
                if stop.received:
                    break
        finally:
            batches.close()
    if stop.received:  # the finished rows after the gap too, still in input order
        rest = [path for path in paths[printed:] if path in scores or path in failed]
        writer.writerows([path, format_score(scores.get(path))] for path in rest)
        sys.stdout.flush()
        print(f"reiqa score: stopped by {stop.name}; {printed + len(rest)} of {len(paths)} "
              f"row(s) printed, in input order; the others are missing", file=sys.stderr)
        return stop.exit_status
    n_failed = sum(path in failed for path in paths)
    print(f"reiqa score: {len(paths) - n_failed} of {len(paths)} image(s) scored"
          + (f", {n_failed} failed" if n_failed else ""), file=sys.stderr)
    return 1 if n_failed else 0
