"""``reiqa extract``: Re-IQA features of images into an .npz file, streamed and resumable."""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from reiqa_jax.dtypes import INFERENCE_DTYPES
from reiqa_jax.errors import error, one_line
from reiqa_jax.output_paths import not_a_plain_file

HELP = "Re-IQA features of images into an .npz file"
DESCRIPTION = ("Computes Re-IQA features as the released demos do (full + half scale, "
               "eval mode) and writes the resolved paths, the inputs as written, the other "
               "columns of input CSV lists, the quality and/or content features and the "
               "inputs that failed to OUT (.npz is added when missing). Finished images are "
               "saved as the run goes into OUT.partial/; running the same command again "
               "after an interruption (Ctrl-C, SIGTERM, a crash) computes only the rest.")
EPILOG = """\
exit status:
  0        every input was extracted
  1        some inputs failed (each is reported on stderr and listed in the
           output's failed, failed_entries and errors arrays)
  2        usage error: bad arguments, unusable checkpoint, output not writable
           or already there (see --overwrite); nothing was computed
  130/143  stopped by SIGINT/SIGTERM after saving the finished images; run the
           same command again to resume
"""
_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def _positive_int(text: str) -> int:
    """An integer >= 1, with an optional k / M / G suffix (powers of 1000)."""
    found = re.fullmatch(r"\s*([0-9][0-9_]*)\s*([kKmMgG]?)\s*", text)
    if not found or int(found.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1 (a k, M or G "
                                         f"suffix multiplies by 1000, 10^6, 10^9), got {text!r}")
    return int(found.group(1)) * _SUFFIXES[found.group(2).lower()]


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_arguments(p) -> None:
    p.epilog = EPILOG  # cli prints it as written: the exit-status table stays a table
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively) or .csv/.txt lists")
    p.add_argument("--quality-ckpt", type=Path, help="quality-aware encoder checkpoint folder")
    p.add_argument("--content-ckpt", type=Path, help="content-aware encoder checkpoint folder")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output .npz file (.npz is added when missing)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output if it exists (otherwise an error)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="reuse the images an interrupted run with the same settings saved in "
                        "OUT.partial/ (default); --no-resume discards them and starts over")
    p.add_argument("--batch-size", type=_positive_int, default=8,
                   help="most images per device step (default 8)")
    p.add_argument("--batch-pixels", type=_positive_int, default=None,
                   help="most padded pixels per device step, which bounds memory; an image "
                        "larger than this fails alone (default: half the device's memory, "
                        "about 160 bytes per pixel in float32)")
    p.add_argument("--low-memory", action="store_true",
                   help="on CPU, compile every step with XLA's default convolutions "
                        "(YNNPACK): a quarter less working memory per pixel, slower (default: "
                        "XLA's own, faster convolutions wherever --batch-pixels has room for "
                        "their 1.4x memory; features differ by float32 rounding only)")
    p.add_argument("--buckets", type=int, default=4, metavar="N",
                   help="padded sizes per doubling of an image side: images of nearby sizes "
                        "share one compiled program, and those of sizes with few images share "
                        "canvases, with features unchanged (default 4; 0 compiles each size "
                        "on its own, without canvases)")
    p.add_argument("--dtype", choices=INFERENCE_DTYPES, default="float32", help="compute dtype")
    p.add_argument("--exif-transpose", action="store_true",
                   help="rotate images upright by their EXIF orientation first "
                        "(the released demos do not)")
    p.add_argument("--max-pixels", type=_positive_int, default=None,
                   help="refuse images with more pixels before decoding them (default: "
                        "PIL's decompression-bomb limit, 89478485; may be set higher)")
    p.add_argument("--save-every", type=_non_negative_float, default=10.0, metavar="SECONDS",
                   help="save finished images to OUT.partial/ at least this often "
                        "(default 10)")
    p.add_argument("--no-compile-cache", action="store_true",
                   help="do not keep compiled programs for the next run (default: kept in "
                        "$REIQA_JAX_CACHE_DIR, else $XDG_CACHE_HOME/reiqa-jax/jax, else "
                        "~/.cache/reiqa-jax/jax)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _checkpoint_problem(name: str, directory: Path) -> str | None:
    """Why a checkpoint argument cannot be used, or None."""
    from reiqa_jax.checkpoint import CheckpointError, WrongBranch, read_header

    if directory.is_file():
        return (f"{name} checkpoint {directory} is a file; give a reiqa-jax checkpoint folder "
                f"(a PyTorch .pth is converted once with: reiqa convert {directory} FOLDER)")
    try:
        read_header(directory, branch=name)
    except WrongBranch as exc:
        return f"--{name}-ckpt {directory}: {exc}; give it as --{exc.found}-ckpt"
    except CheckpointError as exc:
        return f"{name} checkpoint {directory}: {exc}"
    return None


def run(args) -> int:
    from reiqa_jax.interrupts import StopSignals

    # The handlers first: Ctrl-C while jax loads stops after the models are
    # loaded, in one line, like any other (never a KeyboardInterrupt there).
    waiting = "stopping after the current batch"
    with StopSignals("reiqa extract", waiting, verbose=sys.stderr.isatty()) as stop:
        from reiqa_jax.cpu_devices import use_cpu_devices

        use_cpu_devices()  # before JAX starts: two encoders side by side on CPU
        return _run(args, stop)


def _run(args, stop) -> int:
    from reiqa_jax.inputs import InputError, expand_image_inputs
    from reiqa_jax.scoring.features import (ShardStore, ShardStoreError, folder_fingerprint,
                                            npz_path, partial_dir)

    if args.quality_ckpt is None and args.content_ckpt is None:
        return error("reiqa extract", "give --quality-ckpt and/or --content-ckpt")
    if args.buckets < 0:
        return error("reiqa extract", f"--buckets must be 0 or more, got {args.buckets}")
    checkpoints = {name: directory for name, directory in
                   (("quality", args.quality_ckpt), ("content", args.content_ckpt))
                   if directory is not None}
    for name, directory in checkpoints.items():
        problem = _checkpoint_problem(name, directory)
        if problem:
            return error("reiqa extract", problem)
    try:
        expanded = expand_image_inputs(args.inputs, "reiqa extract")
    except InputError as exc:
        return error("reiqa extract", str(exc))

    final = npz_path(args.output)
    if final.is_dir():
        return error("reiqa extract", f"output {final} is a folder")
    special = not_a_plain_file(final)
    if special:
        return error("reiqa extract", f"output {special}")
    if final.exists() and not args.overwrite:
        return error("reiqa extract", f"output {final} exists; pass --overwrite to replace it")
    settings = {
        "encoders": list(checkpoints),
        **{f"{name}_ckpt": os.path.abspath(d) for name, d in checkpoints.items()},
        **{f"{name}_ckpt_fingerprint": folder_fingerprint(d) for name, d in checkpoints.items()},
        "dtype": args.dtype,
        "exif_transpose": bool(args.exif_transpose),
    }
    try:
        partial = ShardStore(partial_dir(final), settings, blocks=list(checkpoints),
                             resume=args.resume)
    except ShardStoreError as exc:
        return error("reiqa extract", str(exc))
    try:
        return _extract(args, stop, expanded, checkpoints, final, partial)
    finally:
        partial.close()
        if partial.directory.exists() and not partial.has_shards():
            partial.remove()  # nothing saved: leave no empty folder behind


def _extract(args, stop, expanded, checkpoints, final, partial) -> int:
    from tqdm.auto import tqdm

    from reiqa_jax.checkpoint import CheckpointError, load_model
    from reiqa_jax.dtypes import inference_dtype
    from reiqa_jax.extract import FeatureExtractor
    from reiqa_jax.images import DEFAULT_MAX_PIXELS
    from reiqa_jax.scoring.features import Features, ShardStoreError, fill_store, write_npz

    dtype = inference_dtype(args.dtype)
    models = {}
    for name, directory in checkpoints.items():
        try:
            models[name] = load_model(directory, dtype=dtype, branch=name)
        except (CheckpointError, OSError) as exc:
            return error("reiqa extract", f"{name} checkpoint {directory}: {exc}")
        if stop.received:
            return _stopped(stop, 0, len(expanded.paths), final, partial)
    try:
        extractor = FeatureExtractor(
            quality_model=models.get("quality"), content_model=models.get("content"),
            batch_size=args.batch_size, exif_transpose=args.exif_transpose,
            max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, batch_pixels=args.batch_pixels,
            buckets_per_octave=args.buckets, compile_cache=not args.no_compile_cache,
            low_memory=args.low_memory)
    except ValueError as exc:
        return error("reiqa extract", str(exc))

    started = time.monotonic()
    unique = list(dict.fromkeys(expanded.paths))
    todo = [path for path in unique if not partial.is_done(path)]
    done_before = len(unique) - len(todo)
    if done_before:
        print(f"reiqa extract: resuming: {done_before} of {len(unique)} image(s) already saved "
              f"in {partial.directory}", file=sys.stderr)
    bar = tqdm(total=len(unique), initial=done_before, disable=args.no_progress, unit="img",
               file=sys.stderr)

    def warn(path: str, message: str) -> None:
        tqdm.write(f"reiqa extract: skipped {path}: {message}", file=sys.stderr)

    try:
        failures, stopped = fill_store(partial, extractor.iter_batches(todo, on_error=warn), todo,
                                       should_stop=lambda: bool(stop.received),
                                       save_every=args.save_every, on_batch=bar.update)
    except ShardStoreError as exc:
        return error("reiqa extract", str(exc))
    finally:
        bar.close()
    if stopped or stop.received:
        saved = sum(1 for path in unique if partial.is_done(path))
        return _stopped(stop, saved, len(unique), final, partial)

    # Every input is done: assemble the final output in input order.
    done = [i for i, path in enumerate(expanded.paths) if path not in failures]
    rows = partial.rows([expanded.paths[i] for i in done], extractor.feature_dims)
    failed = [i for i, path in enumerate(expanded.paths) if path in failures]
    features = Features(
        paths=[expanded.paths[i] for i in done],
        quality=rows.get("quality"), content=rows.get("content"),
        failed=[expanded.paths[i] for i in failed],
        errors=[failures[expanded.paths[i]] for i in failed],
        entries=[expanded.entries[i] for i in done],
        failed_entries=[expanded.entries[i] for i in failed],
        columns={name: [values[i] for i in done] for name, values in expanded.columns.items()},
        quality_ckpt=os.path.abspath(checkpoints["quality"]) if "quality" in checkpoints else "",
        content_ckpt=os.path.abspath(checkpoints["content"]) if "content" in checkpoints else "",
    )
    try:
        write_npz(final, features.arrays())
    except OSError as exc:
        return error("reiqa extract", f"cannot write {final}: {one_line(exc)} (the "
                                f"finished images stay in {partial.directory}; rerun to retry)")
    partial.remove()
    print(f"reiqa extract: {len(features.paths)} image(s) in {time.monotonic() - started:.1f} s "
          f"-> {final}"
          + (f"; {len(failed)} input(s) failed (listed above and in its failed array)"
             if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def _stopped(stop, saved: int, total: int, final, partial) -> int:
    if saved:
        print(f"reiqa extract: stopped by {stop.name}; {saved} of {total} image(s) saved in "
              f"{partial.directory}; run the same command again to finish {final}",
              file=sys.stderr)
    else:  # the run removes the then empty folder
        print(f"reiqa extract: stopped by {stop.name} before any image was finished; nothing "
              f"written", file=sys.stderr)
    return stop.exit_status
