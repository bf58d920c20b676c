"""Reproducing a row of the Re-IQA paper's table: dataset -> features -> protocol.

``evaluate_dataset`` builds the dataset's TFDS labels (``reiqa_jax.datasets``,
config "labels"; the images are read from manual_dir), extracts features with
the given encoders (``reiqa_jax.extract``), runs the protocol of
``reiqa_jax.regress`` with the reference content as the split group on
synthetic datasets, and writes the report beside the paper's numbers.

Feature extraction is the long part (about 0.6 s per 512x384 image for both
ResNet-50 encoders on 2 CPU cores), so it is cached in ``out_dir/features/``, in
chunks of ``chunk`` images: a second run, or a run that was interrupted,
extracts only what is missing. A chunk is reused only when its image list
and its fingerprint (the checkpoint files, dtype, shorter side) match.
``out_dir/features.npz`` and ``out_dir/scores.csv`` are written in the
formats of ``reiqa extract`` / ``reiqa regress``, so the protocol can be
rerun by hand with other options.

Images can be scaled so their shorter side is ``shorter_side`` pixels
(bicubic, never enlarged) before extraction; the registry sets 512 for SPAQ,
whose photos are about 4000x3000, as the SPAQ authors did.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reiqa_jax import regress

FEATURES_DIR = "features"
CACHE_VERSION = 1


def _checkpoint_fingerprint(directory) -> str:
    """A digest of a checkpoint folder's file names, sizes and modification times."""
    directory = Path(directory).expanduser().resolve()
    digest = hashlib.sha1(str(directory).encode())
    for root, dirs, files in sorted(os.walk(directory)):
        dirs.sort()
        for name in sorted(files):
            stat = (Path(root) / name).stat()
            digest.update(f"{Path(root, name).relative_to(directory)}:{stat.st_size}:"
                          f"{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


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
    """Features of ``paths`` (input order): blocks (N, D) with NaN rows where failed."""

    paths: list[str]
    blocks: dict[str, np.ndarray]
    errors: dict[int, str]
    reused: int


def extract_cached(paths: Sequence[str], cache_dir, *, quality_ckpt=None, content_ckpt=None,
                   batch_size: int = 8, dtype: str = "float32", shorter_side: int | None = None,
                   chunk: int = 128, progress: bool = True) -> CachedFeatures:
    """Features of image files, cached chunk by chunk in ``cache_dir``."""
    from tqdm.auto import tqdm

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = {"quality": quality_ckpt, "content": content_ckpt}
    names = [n for n in ("content", "quality") if checkpoints[n]]
    if not names:
        raise ValueError("give a quality and/or a content checkpoint")
    fingerprint = json.dumps({
        "version": CACHE_VERSION, "dtype": dtype, "shorter_side": shorter_side,
        **{n: _checkpoint_fingerprint(checkpoints[n]) for n in names}}, sort_keys=True)
    paths = [str(p) for p in paths]
    starts = list(range(0, len(paths), chunk))
    blocks: dict[str, list[np.ndarray]] = {n: [] for n in names}
    errors: dict[int, str] = {}
    extractor = None
    reused = 0
    bar = tqdm(total=len(paths), disable=not progress, unit="img", desc="features",
               file=sys.stderr)
    for number, start in enumerate(starts):
        part = paths[start:start + chunk]
        file = cache_dir / f"chunk_{number:05d}.npz"
        cached = _read_chunk(file, part, fingerprint, names)
        if cached is None:
            if extractor is None:
                extractor = _make_extractor(checkpoints, names, batch_size, dtype)
            cached = _extract_chunk(extractor, part, names, shorter_side)
            tmp = file.with_name(file.stem + ".tmp.npz")
            np.savez(tmp, paths=np.asarray(part, dtype=str), fingerprint=np.asarray(fingerprint),
                     failed=np.asarray(sorted(cached[1]), dtype=np.int64),
                     errors=np.asarray([cached[1][i] for i in sorted(cached[1])], dtype=str),
                     **cached[0])
            os.replace(tmp, file)
        else:
            reused += len(part)
        for name in names:
            blocks[name].append(cached[0][name])
        errors.update({start + i: message for i, message in cached[1].items()})
        bar.update(len(part))
    bar.close()
    return CachedFeatures(paths=paths, blocks={n: np.concatenate(b) if b else np.zeros((0, 0))
                                               for n, b in blocks.items()},
                          errors=errors, reused=reused)


def _read_chunk(file: Path, part: list[str], fingerprint: str, names: list[str]):
    try:
        with np.load(file, allow_pickle=False) as data:
            if str(data["fingerprint"]) != fingerprint or [str(p) for p in data["paths"]] != part:
                return None
            arrays = {n: data[n] for n in names}
            errors = dict(zip(data["failed"].tolist(), (str(e) for e in data["errors"])))
    except (OSError, KeyError, ValueError):
        return None
    return arrays, errors


def _make_extractor(checkpoints, names, batch_size, dtype):
    from reiqa_jax.checkpoint import load_model
    from reiqa_jax.dtypes import inference_dtype
    from reiqa_jax.extract import FeatureExtractor

    compute = inference_dtype(dtype)
    models = {n: load_model(checkpoints[n], dtype=compute, branch=n) for n in names}
    return FeatureExtractor(quality_model=models.get("quality"),
                            content_model=models.get("content"), batch_size=batch_size)


def _extract_chunk(extractor, part: list[str], names: list[str], shorter_side: int | None):
    """(blocks with NaN rows for failures, {index in part: error})."""
    from reiqa_jax.images import ImageLoadError

    errors: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="reiqa-scaled-") as folder:
        sources = []
        for i, path in enumerate(part):
            if shorter_side:
                try:
                    sources.append(_scaled_copy(path, Path(folder), shorter_side, i))
                except ImageLoadError as exc:
                    errors[i] = str(exc)
                    sources.append(None)
            else:
                sources.append(path)
        todo = [i for i, s in enumerate(sources) if s is not None]
        features = extractor.extract([sources[i] for i in todo], progress=False)
    row_of = {path: k for k, path in enumerate(features.paths)}
    failed = dict(zip(features.failed, features.errors))
    blocks = {n: np.full((len(part), extractor.feature_dims[n]), np.nan, np.float32)
              for n in names}
    for i in todo:
        k = row_of.get(sources[i])
        if k is None:
            errors[i] = failed.get(sources[i], "not extracted")
            continue
        for n in names:
            blocks[n][i] = getattr(features, n)[k]
    return blocks, errors


@dataclasses.dataclass
class Evaluation:
    """What :func:`evaluate_dataset` did: the report (as written), the protocol result,
    the dataset's records and the indices of the images that entered the protocol."""

    report: dict
    result: regress.ProtocolResult
    records: object
    used: np.ndarray
    features: np.ndarray


def evaluate_dataset(name: str, manual_dir, *, quality_ckpt=None, content_ckpt=None,
                     out_dir, data_dir=None, batch_size: int = 8, dtype: str = "float32",
                     shorter_side: int | None | str = "default", n_splits: int = 10,
                     seed: int = 0, models: Sequence[str] = regress.MODELS,
                     progress: bool = True, chunk: int = 128, config: str = "labels",
                     log=lambda message: print(message, file=sys.stderr)) -> Evaluation:
    """Dataset ``name`` (see ``reiqa_jax.datasets``) through features and the protocol.

    Writes into ``out_dir``: report.json, scatter.png, features.npz, scores.csv
    and the feature cache. ``data_dir`` (default ``out_dir/tfds``) holds the
    TFDS build. shorter_side: "default" takes the registry's (512 for SPAQ,
    None elsewhere); None or 0 keeps the images as they are. config: the
    TFDS config to build, "labels" (or "labels_dmos" for an iqa_csv collection
    whose scores are lower-is-better).
    Raises ``datasets.core.DatasetError`` / ``regress.ProtocolError`` (one line).
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
    records = datasets.load_records(spec.name, manual_dir, data_dir=data_dir, config=config)
    log(f"reiqa evaluate: {spec.title}: {len(records.paths)} images "
        f"({'lower' if not records.higher_is_better else 'higher'} score = better quality)"
        + (f", scaled to a shorter side of {shorter_side} px" if shorter_side else ""))
    names = tuple(n for n, c in (("content", content_ckpt), ("quality", quality_ckpt)) if c)
    cached = extract_cached(records.paths, out_dir / FEATURES_DIR, quality_ckpt=quality_ckpt,
                            content_ckpt=content_ckpt, batch_size=batch_size, dtype=dtype,
                            shorter_side=shorter_side, chunk=chunk, progress=progress)
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
    result = regress.run_protocol(
        x, y, None if groups is None else [groups[i] for i in used], n_splits=n_splits,
        seed=seed, models=models, higher_is_better=records.higher_is_better,
        names=[records.relative_paths[i] for i in used], progress=progress)
    extra = {
        "dataset": spec.name, "title": spec.title,
        "paper": {"srcc": spec.paper_srcc, "plcc": spec.paper_plcc},
        "features": list(names), "manual_dir": str(Path(manual_dir).expanduser().resolve()),
        "checkpoints": {"quality": str(quality_ckpt or ""), "content": str(content_ckpt or "")},
        "dtype": dtype, "shorter_side": shorter_side, "grouped_by_content": groups is not None,
        "n_failed": len(cached.errors),
        "failed": {records.relative_paths[i]: m for i, m in cached.errors.items()},
    }
    report = regress.write_report(result, out_dir, extra=extra, title=spec.title)
    return Evaluation(report=report, result=result, records=records, used=used, features=x)


def _write_exports(out_dir: Path, records, cached: CachedFeatures, used: np.ndarray,
                   names: Sequence[str], checkpoints: dict) -> None:
    """features.npz (the `reiqa extract` format) and scores.csv for `reiqa regress`."""
    import csv

    failed = [i for i in range(len(records.paths)) if i in cached.errors]
    arrays = {
        "paths": np.asarray([records.paths[i] for i in used], dtype=str),
        "entries": np.asarray([records.relative_paths[i] for i in used], dtype=str),
        "failed": np.asarray([records.paths[i] for i in failed], dtype=str),
        "failed_entries": np.asarray([records.relative_paths[i] for i in failed], dtype=str),
        "errors": np.asarray([cached.errors[i] for i in failed], dtype=str),
    }
    for n in ("quality", "content"):
        arrays[f"{n}_ckpt"] = np.asarray(
            str(Path(checkpoints[n]).expanduser().resolve()) if checkpoints[n] else "")
    for n in names:
        arrays[n] = cached.blocks[n][used]
    np.savez(out_dir / "features.npz", **arrays)
    groups = records.groups
    with open(out_dir / "scores.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "score"] + (["group"] if groups else []))
        for i in range(len(records.paths)):
            writer.writerow([records.relative_paths[i], repr(float(records.scores[i]))]
                            + ([groups[i]] if groups else []))
