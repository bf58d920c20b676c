"""IQA datasets as TFDS builders (manual download), and a registry of them.

One folder per dataset, ``reiqa_jax/datasets/<name>/<name>.py``, each a
``GeneratorBasedBuilder`` whose ``MANUAL_DOWNLOAD_INSTRUCTIONS`` name the
official files; ``core.py`` holds what they share (features and configs are
described there). Builds need no TensorFlow and are read with
``builder.as_data_source()`` (array_record, random access, grain-ready).

This module imports no TFDS itself (``reiqa --help`` stays fast); the
builders load on first use::

    from reiqa_jax import datasets
    builder = datasets.prepare("kadid10k", manual_dir="~/data/kadid", data_dir="~/tfds")
    source = builder.as_data_source()["train"]      # source[i]["image"], ["score"], ...
    records = datasets.load_records("kadid10k", manual_dir=..., data_dir=...)  # numpy columns

Names: koniq10k, kadid10k, clive, live, csiq, tid2013, spaq, live_fb, and
iqa_csv (any folder with a scores.csv). ``spec(name)`` also accepts the usual
spellings (KonIQ-10k, LIVE-C, LIVEC, FLIVE, LIVE-FB, TID2013, ...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import re
from pathlib import Path

import numpy as np

from reiqa_jax.errors import ReiqaError


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A dataset ``reiqa evaluate`` knows: its TFDS name and builder, the Re-IQA
    paper's median SRCC / PLCC for it (Table 2 and 3 of Saha et al., CVPR 2023),
    and the shorter side images are scaled to before extraction (None: as they are)."""

    name: str
    title: str
    builder: str  # "module:Class"
    paper_srcc: float | None
    paper_plcc: float | None
    shorter_side: int | None = None
    aliases: tuple[str, ...] = ()


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("koniq10k", "KonIQ-10k", "reiqa_jax.datasets.koniq10k:Koniq10k", 0.914, 0.923,
                aliases=("koniq",)),
    DatasetSpec("spaq", "SPAQ", "reiqa_jax.datasets.spaq:Spaq", 0.918, 0.925, shorter_side=512),
    DatasetSpec("live_fb", "LIVE-FB", "reiqa_jax.datasets.live_fb:LiveFb", 0.645, 0.733,
                aliases=("flive", "livefb", "paq2piq")),
    DatasetSpec("clive", "CLIVE", "reiqa_jax.datasets.clive:Clive", 0.840, 0.854,
                aliases=("livec", "live_c", "live_challenge", "live_in_the_wild", "challengedb")),
    DatasetSpec("live", "LIVE", "reiqa_jax.datasets.live:Live", 0.970, 0.971,
                aliases=("live_iqa", "live2", "live_release2")),
    DatasetSpec("csiq", "CSIQ", "reiqa_jax.datasets.csiq:Csiq", 0.947, 0.960,
                aliases=("csiq_iqa",)),
    DatasetSpec("tid2013", "TID2013", "reiqa_jax.datasets.tid2013:Tid2013", 0.804, 0.861,
                aliases=("tid",)),
    DatasetSpec("kadid10k", "KADID-10k", "reiqa_jax.datasets.kadid10k:Kadid10k", 0.872, 0.885,
                aliases=("kadid",)),
    DatasetSpec("iqa_csv", "CSV collection", "reiqa_jax.datasets.iqa_csv:IqaCsv", None, None,
                aliases=("csv",)),
)}


class UnknownDataset(ReiqaError, ValueError):
    """A dataset name that is not in the registry; the message lists the known ones."""


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def spec(name: str) -> DatasetSpec:
    """The registry entry for ``name`` (case, '-' and '_' do not matter)."""
    key = _key(name)
    for s in DATASETS.values():
        if key == s.name or key == _key(s.title) or key in s.aliases or key.replace("_", "") in (
                s.name.replace("_", ""), *[a.replace("_", "") for a in s.aliases]):
            return s
    raise UnknownDataset(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def builder_class(name: str):
    """The TFDS builder class of ``name`` (imports its module, which registers it)."""
    module, _, cls = spec(name).builder.partition(":")
    return getattr(importlib.import_module(module), cls)


def make_builder(name: str, *, data_dir, config: str = "labels"):
    """A builder instance writing/reading array_record files under ``data_dir``."""
    return builder_class(name)(config=config, data_dir=str(Path(data_dir).expanduser()),
                               file_format="array_record")


def prepare(name: str, manual_dir, *, data_dir, config: str = "labels",
            log=lambda message: None):
    """Builds ``name`` from ``manual_dir`` unless already built under ``data_dir``; returns
    the builder. Raises ``core.DatasetError`` (one line) when manual_dir is not right.

    A build is kept only while it holds what the label files in ``manual_dir``
    say now (paths, scores, contents, distortions, levels, splits): when they
    were edited since, the build of this version and config is made again (and
    ``log`` says so). The images of the "images" config are not compared.
    """
    return _prepare(name, manual_dir, data_dir=data_dir, config=config, log=log)[0]


def _prepare(name: str, manual_dir, *, data_dir, config: str, log):
    """(builder, its examples' labels sorted by path) for :func:`prepare`."""
    import shutil

    from reiqa_jax.datasets.core import DatasetError

    manual_dir = Path(manual_dir).expanduser()
    if not manual_dir.is_dir():
        raise DatasetError(f"manual_dir {manual_dir} is not a folder")
    if not any(manual_dir.iterdir()):
        raise DatasetError(f"manual_dir {manual_dir} is empty")
    builder = _build(name, manual_dir, data_dir=data_dir, config=config)
    built = _labels(builder)
    wanted = sorted(_record_labels(r) for r in builder.checked_records(manual_dir))
    if [_example_labels(row) for row in built] != wanted:
        log(f"the labels in {manual_dir} changed since {builder.data_dir} was built: "
            f"building it again")
        shutil.rmtree(builder.data_dir)  # this version and config of our own build only
        builder = _build(name, manual_dir, data_dir=data_dir, config=config)
        built = _labels(builder)
    return builder, built


def _build(name: str, manual_dir: Path, *, data_dir, config: str):
    import tensorflow_datasets as tfds

    from reiqa_jax.datasets.core import DatasetError
    from reiqa_jax.errors import one_line

    builder = make_builder(name, data_dir=data_dir, config=config)
    # TFDS's progress bars (generating, shuffling) are about its own files, not the
    # command's work, which shows its own progress.
    tfds.disable_progress_bar()
    try:
        # TFDS prints "Downloading and preparing ..." on stdout, though nothing is
        # downloaded; keep stdout for results.
        with contextlib.redirect_stdout(io.StringIO()):
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    except AssertionError as exc:  # TFDS's own manual_dir checks
        # its first sentence: the rest repeats our instructions, which --instructions prints
        raise DatasetError(one_line(exc).split(". ")[0]) from None
    return builder


def _labels(builder) -> list[dict]:
    """Every example of a build without its image, sorted by path."""
    source = builder.as_data_source()["train"]
    rows = [{k: v for k, v in source[i].items() if k != "image"} for i in range(len(source))]
    return sorted(rows, key=lambda r: _text(r["path"]))


def _example_labels(row) -> tuple:
    return (_text(row["path"]), float(np.float32(row["score"])), _text(row["content"]),
            _text(row["distortion"]), int(row["level"]), _text(row["split"]))


def _record_labels(record) -> tuple:
    return (record.path, float(np.float32(record.score)), record.content, record.distortion,
            int(record.level), record.split)


@dataclasses.dataclass
class IQARecords:
    """A dataset's labels as numpy columns, sorted by path.

    paths: absolute image paths (manual_dir / path). scores: float64 as
    published. content: reference ids ('' for authentic datasets).
    """

    name: str
    paths: list[str]
    relative_paths: list[str]
    scores: np.ndarray
    higher_is_better: bool
    content: list[str]
    distortion: list[str]
    level: np.ndarray
    split: list[str]

    @property
    def groups(self) -> list[str] | None:
        """The reference content of each image, when the dataset has it for all."""
        return self.content if self.content and all(self.content) else None


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def load_records(name: str, manual_dir, *, data_dir, config: str = "labels",
                 log=lambda message: None) -> IQARecords:
    """Builds (if needed, or again when the label files changed: see :func:`prepare`)
    and reads every example's labels."""
    builder, rows = _prepare(name, manual_dir, data_dir=data_dir, config=config, log=log)
    manual_dir = Path(manual_dir).expanduser().resolve()
    relative = [_text(r["path"]) for r in rows]
    higher = bool(builder.higher_is_better())
    return IQARecords(
        name=spec(name).name, paths=[str(manual_dir / p) for p in relative],
        relative_paths=relative, scores=np.array([float(r["score"]) for r in rows]),
        higher_is_better=higher, content=[_text(r["content"]) for r in rows],
        distortion=[_text(r["distortion"]) for r in rows],
        level=np.array([int(r["level"]) for r in rows], dtype=np.int32),
        split=[_text(r["split"]) for r in rows])
