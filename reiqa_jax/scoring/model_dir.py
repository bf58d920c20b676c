"""Self-contained quality models: two encoders + a regressor in one folder, and scoring.

A model directory ``M`` holds everything ``reiqa score`` needs::

    M/reiqa_model.json   {"format": "reiqa-jax-quality-model", "version": 1,
                          "features": ["content", "quality"],
                          "encoders": {"content": "content", "quality": "quality"},
                          "higher_is_better": true | false  (of the training scores),
                          "output": "higher is better", "source": {...}, "meta": {...}}
    M/regressor.npz      coef, intercept, mean, scale (float64; see
    M/regressor.json     reiqa_jax.scoring.regressor): model, penalty, score direction...
    M/content/           content-aware encoder checkpoint (reiqa_jax.checkpoint format)
    M/quality/           quality-aware encoder checkpoint

Only the encoders the regressor reads are stored. Scores are always
higher-is-better: a regressor trained on DMOS is mirrored (see
``Regressor.quality``), and the JSON says so. Nothing is pickled.

Python API::

    from reiqa_jax.scoring.model_dir import make_model_dir, load_quality_model, score_images
    make_model_dir("model/", regressor, quality_ckpt="ckpt/q", content_ckpt="ckpt/c")
    rows = score_images(["photos/", "one.jpg"], "model/")   # [ScoredImage(path, score, error)]
    model = load_quality_model("model/"); model.score_paths(paths)   # reuse loaded encoders
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from reiqa_jax.errors import ReiqaError, one_line
from reiqa_jax.output_paths import check_output_folder
from reiqa_jax.scoring.regressor import Regressor, RegressorError

MODEL_FORMAT = "reiqa-jax-quality-model"
MODEL_VERSION = 1
MODEL_JSON = "reiqa_model.json"
ENCODERS = ("content", "quality")


class ModelDirError(ReiqaError, ValueError):
    """A model directory that cannot be made or used; the message is one line."""


def check_model_target(model_dir, *, overwrite: bool = False) -> Path:
    """Where a model folder may be written, checked before anything is computed.

    A folder that does not exist yet (its nearest existing parent writable),
    an empty folder, or, with ``overwrite``, an earlier model folder (one
    holding ``reiqa_model.json``). Anything else — a file, a folder of other
    things, a model folder without ``overwrite`` — raises ModelDirError.
    """
    return check_output_folder(model_dir, kind="model", marker=MODEL_JSON, overwrite=overwrite,
                               error=ModelDirError)


def checkpoint_sources(features: Sequence[str], *, quality_ckpt=None,
                       content_ckpt=None) -> dict[str, Path]:
    """{block: absolute checkpoint folder} for the encoder blocks in ``features``,
    each checked to be a readable checkpoint; ModelDirError (one line) otherwise."""
    from reiqa_jax.checkpoint import CheckpointError, read_header

    unknown = set(features) - set(ENCODERS)
    if unknown:
        raise ModelDirError(f"unknown feature blocks {list(features)}")
    given = {"quality": quality_ckpt, "content": content_ckpt}
    sources = {}
    for name in features:
        if not given[name]:
            raise ModelDirError(f"the regressor reads {name} features but no {name} encoder "
                                f"checkpoint was given")
        source = Path(given[name]).expanduser().resolve()
        try:
            read_header(source, branch=name)
        except (CheckpointError, OSError) as exc:
            raise ModelDirError(f"{name} checkpoint {source}: {one_line(exc)}") from None
        sources[name] = source
    return sources


def make_model_dir(model_dir, regressor: Regressor, *, quality_ckpt=None, content_ckpt=None,
                   meta: dict | None = None, overwrite: bool = False) -> Path:
    """Writes a self-contained model directory; returns its path.

    The encoder checkpoint directories the regressor needs (its ``features``)
    are copied in whole; the regressor is saved as plain arrays. Writing goes
    to a temporary sibling (made with the usual permissions) renamed into
    place, so a failed call leaves nothing half-written. What may be replaced:
    see :func:`check_model_target`. Raises ModelDirError (one line).
    """
    sources = checkpoint_sources(regressor.features, quality_ckpt=quality_ckpt,
                                 content_ckpt=content_ckpt)
    model_dir = check_model_target(model_dir, overwrite=overwrite)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_dir.with_name(f".{model_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
    tmp.mkdir()  # mode from the umask, unlike tempfile.mkdtemp's 0700
    try:
        for name, source in sources.items():
            shutil.copytree(source, tmp / name)
        regressor.save(tmp)
        header = {
            "format": MODEL_FORMAT, "version": MODEL_VERSION,
            "features": list(regressor.features),
            "encoders": {name: name for name in sources},
            "higher_is_better": regressor.higher_is_better,
            "output": "higher is better" + ("" if regressor.higher_is_better else
                                             " (DMOS predictions mirrored within the training "
                                             "score range)"),
            "source": {name: str(path) for name, path in sources.items()},
            "meta": meta or {},
        }
        (tmp / MODEL_JSON).write_text(json.dumps(header, indent=2) + "\n")
        if model_dir.exists():
            shutil.rmtree(model_dir)  # an earlier model folder or an empty one (checked)
        os.replace(tmp, model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return model_dir


@dataclasses.dataclass
class ScoredImage:
    """One input image: ``score`` (higher is better) or None with the ``error``."""

    path: str
    score: float | None
    error: str | None = None


class QualityModel:
    """A loaded model directory: ``regressor`` plus its encoders (loaded on first use)."""

    def __init__(self, directory, header: dict, regressor: Regressor):
        self.directory = Path(directory)
        self.header = header
        self.regressor = regressor
        self._encoders: dict[str, object] = {}
        self._dtype = None

    @property
    def features(self) -> tuple[str, ...]:
        return self.regressor.features

    def encoders(self, dtype: str = "float32") -> dict:
        """{"content": ReIQAModel, "quality": ReIQAModel} (those the regressor reads)."""
        if self._dtype != dtype:
            from reiqa_jax.checkpoint import CheckpointError, load_model
            from reiqa_jax.dtypes import inference_dtype

            compute = inference_dtype(dtype)
            self._encoders = {}
            for name in self.features:
                folder = self.directory / self.header["encoders"][name]
                try:
                    self._encoders[name] = load_model(folder, dtype=compute, branch=name)
                except (CheckpointError, OSError) as exc:
                    raise ModelDirError(f"{name} encoder {folder}: "
                                        f"{one_line(exc)}") from None
            self._dtype = dtype
        return self._encoders

    def predict_features(self, blocks: Mapping[str, np.ndarray]) -> np.ndarray:
        """{"content": (N, D), "quality": (N, D)} -> (N,) higher-is-better scores."""
        x = np.concatenate([blocks[name] for name in self.features], axis=1)
        if x.shape[1] != self.regressor.n_features:
            raise ModelDirError(f"the encoders give {x.shape[1]} features but the regressor "
                                f"expects {self.regressor.n_features}")
        return self.regressor.quality(x)

    def iter_scores(self, paths: Sequence[str], *, batch_size: int = 8, dtype: str = "float32",
                    exif_transpose: bool = False, max_pixels: int | None = None,
                    on_error: Callable[[str, str], None] | None = None) -> Iterator:
        """Scores of image files batch by batch, as ``FeatureExtractor.iter_batches``
        yields features (not in input order): each result's ``features`` is
        {"score": (len(indices), 1) float64}. Closing it stops the decoding."""
        from reiqa_jax.extract import BatchResult, FeatureExtractor
        from reiqa_jax.images import DEFAULT_MAX_PIXELS

        encoders = self.encoders(dtype)
        extractor = FeatureExtractor(quality_model=encoders.get("quality"),
                                     content_model=encoders.get("content"),
                                     batch_size=batch_size, exif_transpose=exif_transpose,
                                     max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
        batches = extractor.iter_batches([str(p) for p in paths], on_error=on_error)
        try:
            for result in batches:
                scores = (self.predict_features(result.features)[:, None] if result.indices
                          else np.zeros((0, 1)))
                yield BatchResult(result.indices, {"score": scores}, result.failures)
        finally:
            batches.close()

    def score_paths(self, paths: Sequence[str], *, batch_size: int = 8, dtype: str = "float32",
                    exif_transpose: bool = False, max_pixels: int | None = None,
                    progress: bool = False,
                    on_error: Callable[[str, str], None] | None = None) -> list[ScoredImage]:
        """Scores image files, in order; unreadable ones get ``score=None`` and the reason."""
        from tqdm.auto import tqdm

        paths = [str(p) for p in paths]
        if not paths:
            return []
        scores: dict[int, float] = {}
        errors: dict[int, str] = {}
        with tqdm(total=len(paths), disable=not progress, unit="img", file=sys.stderr) as bar:
            for result in self.iter_scores(paths, batch_size=batch_size, dtype=dtype,
                                           exif_transpose=exif_transpose,
                                           max_pixels=max_pixels, on_error=on_error):
                scores.update(zip(result.indices, result.features["score"][:, 0].tolist()))
                errors.update(result.failures)
                bar.update(len(result.indices) + len(result.failures))
        return [ScoredImage(p, scores.get(i), None if i in scores else
                            errors.get(i, "not scored")) for i, p in enumerate(paths)]


def load_quality_model(model_dir) -> QualityModel:
    """Reads a model directory's JSON and regressor (encoders load on first use);
    ModelDirError (one line) when it is not a usable model folder."""
    model_dir = Path(model_dir)
    path = model_dir / MODEL_JSON
    try:
        header = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelDirError(f"{model_dir} is not a model directory (no {MODEL_JSON}; make one "
                            f"with reiqa regress ... --save {model_dir})") from None
    except (OSError, ValueError) as exc:
        raise ModelDirError(f"cannot read {path}: {one_line(exc)}") from None
    if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
        raise ModelDirError(f"{path} is not a {MODEL_FORMAT} file")
    if not isinstance(header.get("version", 0), int) or header.get("version", 0) > MODEL_VERSION:
        raise ModelDirError(f"{path} has version {header['version']!r}; this reiqa-jax reads "
                            f"up to {MODEL_VERSION}")
    try:
        regressor = Regressor.load(model_dir)
    except RegressorError as exc:
        raise ModelDirError(str(exc)) from None
    encoders = header.get("encoders")
    for name in regressor.features:
        if not isinstance(encoders, dict) or not isinstance(encoders.get(name), str):
            raise ModelDirError(f"{path} names no {name} encoder, which the regressor needs")
    return QualityModel(model_dir, header, regressor)


def score_images(inputs: Sequence[str], model_dir, *, batch_size: int = 8,
                 dtype: str = "float32", exif_transpose: bool = False,
                 max_pixels: int | None = None, progress: bool = False,
                 on_error: Callable[[str, str], None] | None = None) -> list[ScoredImage]:
    """Quality scores (higher is better) of images, in input order.

    inputs: image files, folders and .csv/.txt lists, as ``reiqa extract``
    takes them (``reiqa_jax.inputs.expand_inputs``; raises its InputError for
    an input that does not exist). Unreadable images come back with
    ``score=None`` and a one-line ``error``; ``on_error(path, message)`` is
    called for each as it happens.
    """
    from reiqa_jax.inputs import expand_inputs

    model = load_quality_model(model_dir)
    paths = expand_inputs([str(i) for i in inputs]).paths
    return model.score_paths(paths, batch_size=batch_size, dtype=dtype,
                             exif_transpose=exif_transpose, max_pixels=max_pixels,
                             progress=progress, on_error=on_error)


def format_score(score: float | None) -> str:
    """A score as the CSV holds it: 6 significant digits, '' for an image that failed."""
    return "" if score is None else f"{score:.6g}"


def write_scores_csv(rows: Sequence[ScoredImage], out=None) -> None:
    """Writes ``path,score`` rows (empty score for a failed image) to a path or stdout;
    a path is written under a temporary name and moved into place."""
    def emit(handle):
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "score"])
        for row in rows:
            writer.writerow([row.path, format_score(row.score)])

    if out is None or str(out) == "-":
        emit(sys.stdout)
        sys.stdout.flush()
        return
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            emit(handle)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
