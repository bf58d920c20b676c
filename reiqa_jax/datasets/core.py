"""What every IQA dataset builder shares: features, configs, label-file and path helpers.

Every builder is a TFDS ``GeneratorBasedBuilder`` with manual download: the
user puts the official archive's contents in ``manual_dir`` (its
``MANUAL_DOWNLOAD_INSTRUCTIONS`` say which files, from where). Nothing is
downloaded. Builds write array_record files that ``tfds.data_source`` /
``builder.as_data_source()`` read without TensorFlow.

One split, ``train``, holds every image: IQA protocols draw their own random
splits (``reiqa_jax.scoring.protocol``). Official splits, where a dataset ships one,
are kept in the ``split`` feature.

Features of one example::

    image             uint8 (H, W, 3), the original file's bytes kept as they
                      are (BMP/PNG/JPEG), decoded on read  [config "images" only]
    path              str, the image file relative to manual_dir
    score             float32, the published score (MOS or DMOS, its own scale)
    higher_is_better  bool, the score's direction (False for DMOS)
    content           str, reference-image id of a synthetically distorted
                      image ('' for authentic datasets): the group for splits
    distortion        str, distortion type ('' for authentic datasets)
    level             int32, distortion level (1 = mildest), -1 where none
    split             str, the dataset's official split, '' where none

Two configs: ``images`` (the default) stores the encoded images, so the
dataset is self-contained; ``labels`` stores everything else, builds in
seconds and takes no disk space beyond the labels — images are then read from
``manual_dir / path``. For the large sets (SPAQ: 11k full-size phone photos;
LIVE-FB: 40k images) ``labels`` avoids a second copy of many gigabytes;
``reiqa evaluate`` uses it for every dataset.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from reiqa_jax.errors import ReiqaError, one_line

BUILD_VERSION = "1.0.0"


class DatasetError(ReiqaError, ValueError):
    """manual_dir does not hold what a builder needs; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One labelled image before it becomes a TFDS example."""

    path: str  # relative to manual_dir, '/'-separated
    score: float
    content: str = ""
    distortion: str = ""
    level: int = -1
    split: str = ""


class IQAConfig(tfds.core.BuilderConfig):
    """``with_images``: store the encoded images (config "images") or not ("labels").
    ``higher_is_better``: overrides the builder's score direction (generic CSV sets)."""

    def __init__(self, *, with_images: bool, higher_is_better: bool | None = None, **kwargs):
        super().__init__(**kwargs)
        self.with_images = with_images
        self.higher_is_better = higher_is_better


CONFIGS = (
    IQAConfig(name="images", with_images=True,
              description="labels and the encoded images (self-contained)"),
    IQAConfig(name="labels", with_images=False,
              description="labels and paths only; images stay in manual_dir"),
)


class IQABuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the IQA builders. Subclasses set the class constants and ``records``."""

    VERSION = tfds.core.Version(BUILD_VERSION)
    RELEASE_NOTES = {BUILD_VERSION: "First release."}
    BUILDER_CONFIGS = list(CONFIGS)
    HIGHER_IS_BETTER = True
    SYNTHETIC = False  # synthetic datasets have reference contents and distortions
    DESCRIPTION = ""
    HOMEPAGE = ""
    CITATION = ""

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        """This builder's source file. (TFDS 4.9's own lookup imports the
        ``importlib_resources`` backport for builders inside an installed package,
        which Python >= 3.9 does not have.)"""
        import inspect

        from etils import epath

        return epath.Path(inspect.getfile(cls))

    def records(self, manual_dir: Path) -> list[Record]:
        """Every labelled image found in ``manual_dir``; DatasetError if the layout is wrong."""
        raise NotImplementedError

    def higher_is_better(self) -> bool:
        override = getattr(self.builder_config, "higher_is_better", None)
        return self.HIGHER_IS_BETTER if override is None else override

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            "path": tfds.features.Text(),
            "score": np.float32,
            "higher_is_better": np.bool_,
            "content": tfds.features.Text(),
            "distortion": tfds.features.Text(),
            "level": np.int32,
            "split": tfds.features.Text(),
        }
        if self.builder_config.with_images:
            # encoding_format=None keeps each file's own bytes (BMP/PNG/JPEG), no re-encoding.
            features["image"] = tfds.features.Image(shape=(None, None, 3), encoding_format=None)
        direction = "MOS, higher is better" if self.higher_is_better() else "DMOS, lower is better"
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"{self.DESCRIPTION}\n\nScores: {direction}.",
            features=tfds.features.FeaturesDict(features),
            homepage=self.HOMEPAGE or None,
            citation=self.CITATION or None,
            metadata=tfds.core.MetadataDict(higher_is_better=self.higher_is_better(),
                                            synthetic=self.SYNTHETIC),
        )

    def checked_records(self, manual_dir: Path) -> list[Record]:
        """``records`` with every failure as a one-line DatasetError, and none empty."""
        manual_dir = Path(manual_dir)
        try:
            records = self.records(manual_dir)
        except DatasetError:
            raise
        except (ValueError, KeyError, IndexError, TypeError) as exc:  # a malformed label file
            raise DatasetError(f"{self.name}: unexpected content in the label files of "
                               f"{manual_dir}: {type(exc).__name__}: "
                               f"{one_line(exc)}") from None
        if not records:
            raise DatasetError(f"no labelled images found in {manual_dir}")
        return records

    def _split_generators(self, dl_manager):
        manual_dir = Path(dl_manager.manual_dir)
        records = self.checked_records(manual_dir)
        return {"train": self._generate_examples(manual_dir, records)}

    def _generate_examples(self, manual_dir: Path, records: Iterable[Record]) -> Iterator:
        higher = self.higher_is_better()
        for r in records:
            example = {"path": r.path, "score": np.float32(r.score), "higher_is_better": higher,
                       "content": r.content, "distortion": r.distortion,
                       "level": np.int32(r.level), "split": r.split}
            if self.builder_config.with_images:
                example["image"] = rgb_image_source(manual_dir / r.path)
            yield r.path, example


def rgb_image_source(path: Path):
    """What the Image feature stores for ``path``: the file itself when it is RGB
    (its bytes kept as they are), else a lossless PNG of its RGB conversion as
    ``reiqa_jax.images`` makes it (greyscale, CMYK, alpha, 16-bit), so that
    every decoded image is (H, W, 3) uint8."""
    import io

    from PIL import Image

    from reiqa_jax.images import ImageLoadError, open_image

    try:
        with Image.open(path) as image:
            if image.mode == "RGB":
                return os.fspath(path)
        rgb = open_image(path)
    except (OSError, ImageLoadError) as exc:
        raise DatasetError(f"cannot read image {path}: {one_line(exc)}") from None
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return buffer.getvalue()


# ----------------------------------------------------------------------------
# finding files whatever the case of their names and the depth of the archive

class CaseInsensitiveTree:
    """Resolves relative paths below ``root`` ignoring case (archives differ in the
    case of their file names from one copy to the next, e.g. TID2013's ``I25.BMP``)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._listings: dict[Path, dict[str, str]] = {}

    def _listing(self, folder: Path) -> dict[str, str]:
        if folder not in self._listings:
            try:
                names = os.listdir(folder)
            except OSError:
                names = []
            self._listings[folder] = {}
            for name in sorted(names):
                self._listings[folder].setdefault(name.lower(), name)
        return self._listings[folder]

    def find(self, relative: str) -> Path | None:
        """The existing ``root / relative`` (case-insensitively), or None."""
        exact = self.root / relative
        if exact.exists():
            return exact
        current = self.root
        for part in Path(relative).parts:
            actual = self._listing(current).get(part.lower())
            if actual is None:
                return None
            current = current / actual
        return current


def find_file(manual_dir: Path, name: str, *, what: str, max_depth: int = 4,
              directory: bool = False) -> Path:
    """The shallowest file (or folder) called ``name`` (any case) under manual_dir."""
    manual_dir = Path(manual_dir)
    target = name.lower()
    level = [manual_dir]
    for _ in range(max_depth + 1):
        found = []
        below = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                is_dir = entry.is_dir()
                if entry.name.lower() == target and is_dir == directory:
                    found.append(Path(entry.path))
                if is_dir and not entry.name.startswith("."):
                    below.append(Path(entry.path))
        if found:
            return found[0]
        level = below
    kind = "folder" if directory else "file"
    raise DatasetError(f"{what}: no {kind} named {name} in {manual_dir}")


def relative(path: Path, manual_dir: Path) -> str:
    return Path(os.path.relpath(path, manual_dir)).as_posix()


def resolve_all(tree: CaseInsensitiveTree, names: Iterable[str], manual_dir: Path, *,
                what: str) -> list[str]:
    """manual_dir-relative paths of ``names`` (relative to ``tree.root``); DatasetError
    naming the missing ones."""
    found, missing = [], []
    for name in names:
        path = tree.find(name)
        if path is None:
            missing.append(name)
        else:
            found.append(relative(path, manual_dir))
    if missing:
        more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        raise DatasetError(f"{what}: {len(missing)} listed image(s) missing under {tree.root}: "
                           f"{', '.join(missing[:5])}{more}")
    return found


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """A CSV with a header as dicts with lower-cased, stripped keys (read as every
    CSV is: :func:`reiqa_jax.inputs.read_csv_table`)."""
    import csv

    from reiqa_jax.inputs import read_csv_table

    try:
        rows = read_csv_table(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {path}: {one_line(exc)}") from None
    if not rows:
        raise DatasetError(f"{path} is empty")
    header = [cell.lower() for cell in rows[0]]
    return [dict(zip(header, row)) for row in rows[1:]]


def column(rows: list[dict[str, str]], names: tuple[str, ...], path: Path) -> str:
    """The first of ``names`` that is a column of ``rows``; DatasetError otherwise."""
    for name in names:
        if rows and name in rows[0]:
            return name
    raise DatasetError(f"{path} has no column {' / '.join(names)}")


def read_xlsx_rows(path: Path, *, sheet: str | None = None,
                   required: tuple[str, ...]) -> list[dict[str, object]]:
    """Rows of an Excel sheet as dicts keyed by the lower-cased header.

    The header is the first row that contains every name in ``required``
    (case-insensitive), so title rows above it are skipped.
    """
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a dependency of the package
        raise DatasetError("reading Excel label files needs openpyxl (pip install openpyxl)") from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is one message
        raise DatasetError(f"cannot read {path}: {one_line(exc)}") from None
    try:
        names = {n.lower(): n for n in book.sheetnames}
        ws = book[names[sheet.lower()]] if sheet and sheet.lower() in names else book.worksheets[0]
        header = None
        rows = []
        for values in ws.iter_rows(values_only=True):
            cells = ["" if v is None else v for v in values]
            if header is None:
                lowered = [str(c).strip().lower() for c in cells]
                if all(r in lowered for r in required):
                    header = lowered
                continue
            if any(str(c).strip() for c in cells):
                rows.append(dict(zip(header, cells)))
    finally:
        book.close()
    if header is None:
        raise DatasetError(f"{path}: no header row with {', '.join(required)}")
    return rows


def mat_strings(value) -> list[str]:
    """A MATLAB cell array of strings (as scipy.io.loadmat returns it) as a flat list."""
    out = []
    for item in np.asarray(value, dtype=object).reshape(-1):
        while isinstance(item, np.ndarray) and item.dtype == object and item.size == 1:
            item = item.reshape(-1)[0]
        if isinstance(item, np.ndarray):
            item = "".join(str(x) for x in item.reshape(-1))
        out.append(str(item).strip())
    return out


def load_mat(path: Path, *keys: str) -> dict:
    """The named variables of a MATLAB .mat file (v5), or DatasetError."""
    from scipy import io

    try:
        data = io.loadmat(path)
    except (OSError, ValueError, NotImplementedError) as exc:
        raise DatasetError(f"cannot read {path}: {one_line(exc)}") from None
    missing = [k for k in keys if k not in data]
    if missing:
        raise DatasetError(f"{path} has no variable {', '.join(missing)}")
    return {k: data[k] for k in keys}
