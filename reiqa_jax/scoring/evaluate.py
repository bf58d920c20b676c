"""Reproducing a row of the Re-IQA paper's table: dataset -> features -> protocol.

``evaluate_dataset`` builds the dataset's TFDS labels (``reiqa_jax.datasets``,
config "labels"; the images are read from manual_dir; the build is made again
when the label files say something else than it holds), extracts features with
the given encoders (``reiqa_jax.extract``), runs the protocol of
:mod:`reiqa_jax.scoring.protocol` with the reference content as the split
group on synthetic datasets, and writes the report beside the paper's numbers.

Feature extraction is the long part (about 0.6 s per 512x384 image for both
ResNet-50 encoders on 2 CPU cores), so finished images are kept in
``out_dir/features/``, a :class:`reiqa_jax.scoring.features.ShardStore`:
a second run, or a run that was interrupted, extracts only what is missing.
A row is reused only while its image file is unchanged (size, modification
time) and the checkpoints, dtype and shorter side are those it was made
with; anything else is computed again. Images that could not be read are
remembered the same way. ``out_dir/features.npz`` and ``out_dir/scores.csv``
are written in the formats of ``reiqa extract`` / ``reiqa regress``, so the
protocol can be rerun by hand with other options.

Images can be scaled so their shorter side is ``shorter_side`` pixels
(bicubic, never enlarged) before extraction; the registry sets 512 for SPAQ,
whose photos are about 4000x3000, as the SPAQ authors did.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from reiqa_jax.scoring.features import Features, ShardStore, fill_store, folder_fingerprint
from reiqa_jax.scoring.protocol import MODELS, ProtocolResult, Stopped, run_protocol
from reiqa_jax.scoring.report import write_report

FEATURES_DIR = "features"
SCALE_CHUNK = 256  # scaled copies on disk at a time


def _scaled_copy(path: str, folder: Path, shorter_side: int, index: int) -> str:
    """``path`` scaled (bicubic) so its shorter side is ``shorter_side``, as a BMP in
    ``folder``; the path itself when it is already that small. Raises ImageLoadError."""
    from PIL import Image

    from reiqa_jax.images import open_image

    image = open_image(path)
    width, height = image.size
    if min(width, height) <= shorter_side:
        return path
    factor = shorter_side / min(width, height)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    target = folder / f"{index:07d}.bmp"  # lossless and quick to write
    image.resize(size, Image.BICUBIC).save(target)
    return str(target)


@dataclasses.dataclass
class CachedFeatures:
    """Features of ``paths`` (input order): blocks (N, D) with NaN rows where failed;
    errors {input index: reason}; reused: images whose result came from the cache."""

    paths: list[str]
    blocks: dict[str, np.ndarray]
    errors: dict[int, str]
    reused: int


def _make_extractor(checkpoints, names, batch_size, dtype):
    from reiqa_jax.checkpoint import load_model
    from reiqa_jax.dtypes import inference_dtype
    from reiqa_jax.extract import FeatureExtractor

    compute = inference_dtype(dtype)
    models = {n: load_model(checkpoints[n], dtype=compute, branch=n) for n in names}
    return FeatureExtractor(quality_model=models.get("quality"),
                            content_model=models.get("content"), batch_size=batch_size)


def extract_cached(paths: Sequence[str], cache_dir, *, quality_ckpt=None, content_ckpt=None,
                   batch_size: int = 8, dtype: str = "float32", shorter_side: int | None = None,
                   progress: bool = True, should_stop: Callable[[], bool] = lambda: False,
                   log: Callable[[str], None] = lambda message: None) -> CachedFeatures:
    """Features of image files, kept in the shard store ``cache_dir`` (module docstring).

    Raises :class:`Stopped` when ``should_stop()`` turns true (the finished
    images are saved), ShardStoreError when the cache cannot be written or
    another run holds it.
    """
    from tqdm.auto import tqdm

    checkpoints = {"quality": quality_ckpt, "content": content_ckpt}
    names = [n for n in ("content", "quality") if checkpoints[n]]
    if not names:
        raise ValueError("give a quality and/or a content checkpoint")
    settings = {"encoders": names, "dtype": dtype, "shorter_side": shorter_side,
                **{f"{n}_ckpt_fingerprint": folder_fingerprint(checkpoints[n]) for n in names}}
    paths = [str(p) for p in paths]
    unique = list(dict.fromkeys(paths))
    store = ShardStore(cache_dir, settings, blocks=names, if_changed="discard",
                       owner="reiqa evaluate")
    try:
        if store.changed:
            log(f"reiqa evaluate: {', '.join(store.changed)} changed since the cached features "
                f"in {cache_dir} were made: computing them again")
        known = {p: store.failure(p) for p in unique if not store.is_done(p)}
        todo = [p for p, message in known.items() if message is None]
        reused = len(unique) - len(todo)
        with tqdm(total=len(unique), initial=reused, disable=not progress, unit="img",
                  desc="features", file=sys.stderr) as bar:
            if todo:
                extractor = _make_extractor(checkpoints, names, batch_size, dtype)
                for part in ([todo] if not shorter_side else
                             [todo[i:i + SCALE_CHUNK] for i in range(0, len(todo), SCALE_CHUNK)]):
                    failures, stopped = _extract_part(extractor, store, part, shorter_side,
                                                      bar, should_stop)
                    store.record_failures(failures)
                    if stopped:
                        raise Stopped(f"features of {len(store)} of {len(unique)} images "
                                      f"saved in {cache_dir}")
        store.compact(unique)
        done = [p for p in unique if store.is_done(p)]
        rows = store.rows(done)
        errors = {i: store.failure(p) or "not extracted" for i, p in enumerate(paths)
                  if not store.is_done(p)}
    finally:
        store.close()
    position = {p: k for k, p in enumerate(done)}
    blocks = {}
    for name in names:
        dim = rows[name].shape[1]
        block = np.full((len(paths), dim), np.nan, np.float32)
        for i, p in enumerate(paths):
            if p in position:
                block[i] = rows[name][position[p]]
        blocks[name] = block
    return CachedFeatures(paths=paths, blocks=blocks, errors=errors, reused=reused)


def _extract_part(extractor, store: ShardStore, part: list[str], shorter_side: int | None,
                  bar, should_stop) -> tuple[dict[str, str], bool]:
    """Extracts ``part`` into ``store`` (scaled copies first when ``shorter_side``)."""
    from reiqa_jax.images import ImageLoadError

    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="reiqa-scaled-") as folder:
        sources, keys = [], []
        for i, path in enumerate(part):
            if shorter_side:
                try:
                    sources.append(_scaled_copy(path, Path(folder), shorter_side, i))
                except ImageLoadError as exc:
                    failures[path] = str(exc)
                    bar.update(1)
                    continue
            else:
                sources.append(path)
            keys.append(path)
        found, stopped = fill_store(store, extractor.iter_batches(sources), keys,
                                    should_stop=should_stop, on_batch=bar.update)
    failures.update(found)
    return failures, stopped


@dataclasses.dataclass
class Evaluation:
    """What :func:`evaluate_dataset` did: the report (as written), the protocol result,
    the dataset's records, the indices of the images that entered the protocol and
    their (M, D) features."""

    report: dict
    result: ProtocolResult
    records: object
    used: np.ndarray
    features: np.ndarray


def evaluate_dataset(name: str, manual_dir, *, quality_ckpt=None, content_ckpt=None,
                     out_dir, data_dir=None, batch_size: int = 8, dtype: str = "float32",
                     shorter_side: int | None | str = "default", n_splits: int = 10,
                     seed: int = 0, models: Sequence[str] = MODELS,
                     progress: bool = True, config: str = "labels",
                     should_stop: Callable[[], bool] = lambda: False,
                     log=lambda message: print(message, file=sys.stderr)) -> Evaluation:
    """Dataset ``name`` (see ``reiqa_jax.datasets``) through features and the protocol.

    Writes into ``out_dir``: report.json, scatter.png, features.npz, scores.csv
    and the feature cache. ``data_dir`` (default ``out_dir/tfds``) holds the
    TFDS build. shorter_side: "default" takes the registry's (512 for SPAQ,
    None elsewhere); None or 0 keeps the images as they are. config: the
    TFDS config to build, "labels" (or "labels_dmos" for an iqa_csv collection
    whose scores are lower-is-better). should_stop: asked after each batch and
    each split; :class:`Stopped` is raised when it says so (finished features kept).
    Raises ``datasets.core.DatasetError`` / ``ProtocolError`` (one line).
    """
    from reiqa_jax import datasets

    spec = datasets.spec(name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(data_dir) if data_dir else out_dir / "tfds"
    if shorter_side == "default":
        shorter_side = spec.shorter_side
    shorter_side = shorter_side or None
    log(f"reiqa evaluate: reading the {spec.title} labels in {manual_dir} "
        f"(TFDS build in {data_dir})")
    records = datasets.load_records(spec.name, manual_dir, data_dir=data_dir, config=config,
                                    log=lambda message: log(f"reiqa evaluate: {message}"))
    log(f"reiqa evaluate: {spec.title}: {len(records.paths)} images "
        f"({'lower' if not records.higher_is_better else 'higher'} score = better quality)"
        + (f", scaled to a shorter side of {shorter_side} px" if shorter_side else ""))
    names = tuple(n for n, c in (("content", content_ckpt), ("quality", quality_ckpt)) if c)
    cached = extract_cached(records.paths, out_dir / FEATURES_DIR, quality_ckpt=quality_ckpt,
                            content_ckpt=content_ckpt, batch_size=batch_size, dtype=dtype,
                            shorter_side=shorter_side, progress=progress,
                            should_stop=should_stop, log=log)
    if cached.reused:
        log(f"reiqa evaluate: reused cached features of {cached.reused} images "
            f"({out_dir / FEATURES_DIR})")
    for index, message in list(cached.errors.items())[:5]:
        log(f"reiqa evaluate: skipped {records.relative_paths[index]}: {message}")
    if len(cached.errors) > 5:
        log(f"reiqa evaluate: ... {len(cached.errors)} images could not be used in all")
    used = np.array([i for i in range(len(records.paths)) if i not in cached.errors], np.int64)
    _write_exports(out_dir, records, cached, used, names,
                   {"quality": quality_ckpt, "content": content_ckpt})
    x = np.concatenate([cached.blocks[n][used] for n in names], axis=1)
    y = records.scores[used]
    groups = records.groups
    result = run_protocol(
        x, y, None if groups is None else [groups[i] for i in used], n_splits=n_splits,
        seed=seed, models=models, higher_is_better=records.higher_is_better,
        names=[records.relative_paths[i] for i in used], progress=progress,
        should_stop=should_stop)
    extra = {
        "dataset": spec.name, "title": spec.title,
        "paper": {"srcc": spec.paper_srcc, "plcc": spec.paper_plcc},
        "features": list(names), "manual_dir": str(Path(manual_dir).expanduser().resolve()),
        "checkpoints": {"quality": str(quality_ckpt or ""), "content": str(content_ckpt or "")},
        "dtype": dtype, "shorter_side": shorter_side, "grouped_by_content": groups is not None,
        "n_failed": len(cached.errors),
        "failed": {records.relative_paths[i]: m for i, m in cached.errors.items()},
    }
    report = write_report(result, out_dir, extra=extra, title=spec.title)
    return Evaluation(report=report, result=result, records=records, used=used, features=x)


def _write_exports(out_dir: Path, records, cached: CachedFeatures, used: np.ndarray,
                   names: Sequence[str], checkpoints: dict) -> None:
    """features.npz (the `reiqa extract` format) and scores.csv for `reiqa regress`."""
    failed = sorted(cached.errors)
    absolute = {n: str(Path(c).expanduser().resolve()) if c else "" for n, c in checkpoints.items()}
    Features(
        paths=[records.paths[i] for i in used],
        entries=[records.relative_paths[i] for i in used],
        quality=cached.blocks["quality"][used] if "quality" in names else None,
        content=cached.blocks["content"][used] if "content" in names else None,
        failed=[records.paths[i] for i in failed],
        failed_entries=[records.relative_paths[i] for i in failed],
        errors=[cached.errors[i] for i in failed],
        quality_ckpt=absolute["quality"], content_ckpt=absolute["content"],
    ).save_npz(out_dir / "features.npz")
    groups = records.groups
    target = out_dir / "scores.csv"
    tmp = target.with_name(f".scores.csv.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["path", "score"] + (["group"] if groups else []))
            for i in range(len(records.paths)):
                writer.writerow([records.relative_paths[i], repr(float(records.scores[i]))]
                                + ([groups[i]] if groups else []))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
