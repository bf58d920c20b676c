"""The IQA dataset builders, each on a tiny manual_dir in that dataset's real layout."""

import sys

import numpy as np
import pytest
from PIL import Image

import iqa_fixtures
from reiqa_jax import datasets
from reiqa_jax.datasets import core


def _decode(value):
    return value.decode() if isinstance(value, bytes) else value


def _examples(builder):
    source = builder.as_data_source()["train"]
    return {_decode(source[i]["path"]): source[i] for i in range(len(source))}


@pytest.mark.parametrize("name", sorted(iqa_fixtures.MAKERS))
def test_builder_reads_the_real_layout(name, tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    expected = iqa_fixtures.MAKERS[name](manual)
    builder = datasets.prepare(name, manual, data_dir=tmp_path / "tfds", config="labels")
    examples = _examples(builder)
    assert sorted(examples) == sorted(expected)
    higher = builder.info.metadata["higher_is_better"]
    assert higher == (name not in ("live", "csiq"))  # LIVE and CSIQ publish DMOS
    for path, (score, content, distortion, level, split) in expected.items():
        ex = examples[path]
        assert float(ex["score"]) == pytest.approx(score, rel=1e-6)
        assert bool(ex["higher_is_better"]) == higher
        assert (_decode(ex["content"]), _decode(ex["distortion"]), int(ex["level"]),
                _decode(ex["split"])) == (content, distortion, level, split)
        assert "image" not in ex
        assert (manual / path).is_file()


@pytest.mark.parametrize("name", ["tid2013", "live_fb"])
def test_images_config_stores_the_files(name, tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    expected = iqa_fixtures.MAKERS[name](manual)
    builder = datasets.prepare(name, manual, data_dir=tmp_path / "tfds", config="images")
    for path, ex in _examples(builder).items():
        image = ex["image"]
        assert image.dtype == np.uint8 and image.shape[2] == 3
        # Lossless: the decoded pixels are the file's (greyscale expanded to RGB).
        np.testing.assert_array_equal(image, np.asarray(Image.open(manual / path).convert("RGB")))
    assert len(expected) == builder.info.splits["train"].num_examples


def test_load_records_and_groups(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    iqa_fixtures.make_kadid10k(manual)
    records = datasets.load_records("KADID-10k", manual, data_dir=tmp_path / "tfds")
    assert records.name == "kadid10k" and records.higher_is_better
    assert records.relative_paths == sorted(records.relative_paths)
    assert records.groups == ["I01", "I01", "I01", "I02", "I02"]
    assert records.paths[0] == str((manual / records.relative_paths[0]).resolve())
    assert records.level.tolist() == [1, 2, 3, 5, 1]
    # A second call reuses the build.
    again = datasets.load_records("kadid10k", manual, data_dir=tmp_path / "tfds")
    assert again.scores.tolist() == records.scores.tolist()
    assert "tensorflow" not in sys.modules  # built and read without TensorFlow


def test_registry_names():
    assert datasets.spec("KonIQ-10k").name == "koniq10k"
    assert datasets.spec("LIVE-FB").name == datasets.spec("FLIVE").name == "live_fb"
    assert datasets.spec("LIVE-C").name == datasets.spec("clive").name == "clive"
    assert datasets.spec("LIVE").name == "live" and datasets.spec("tid2013").paper_srcc == 0.804
    with pytest.raises(datasets.UnknownDataset, match="known: koniq10k"):
        datasets.spec("imagenet")
    for spec in datasets.DATASETS.values():  # every builder says where its files come from
        cls = datasets.builder_class(spec.name)
        assert "manual_dir" in cls.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_wrong_manual_dir_is_one_line(tmp_path):
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "readme.txt").write_text("not a dataset")
    with pytest.raises(core.DatasetError, match="no file named dmos_realigned.mat"):
        datasets.prepare("live", tmp_path / "manual", data_dir=tmp_path / "tfds")
    iqa_fixtures.make_tid2013(tmp_path / "tid")
    next((tmp_path / "tid" / "distorted_images").glob("i01_01_1.bmp")).unlink()
    with pytest.raises(core.DatasetError, match="1 listed image.*missing.*i01_01_1.bmp"):
        datasets.prepare("tid2013", tmp_path / "tid", data_dir=tmp_path / "tfds")
    (tmp_path / "tid" / "mos_with_names.txt").write_text("5.5 i01_01_2.bmp\n")
    (tmp_path / "kadid" / "images").mkdir(parents=True)
    iqa_fixtures.photo(0).save(tmp_path / "kadid" / "images" / "I01_01_01.png")
    (tmp_path / "kadid" / "dmos.csv").write_text("dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,high,0\n")
    with pytest.raises(core.DatasetError, match="unexpected content"):
        datasets.prepare("kadid10k", tmp_path / "kadid", data_dir=tmp_path / "tfds")


def test_a_build_follows_its_label_files(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    iqa_fixtures.make_iqa_csv(manual)
    said = []
    records = datasets.load_records("iqa_csv", manual, data_dir=tmp_path / "tfds", log=said.append)
    assert records.scores.tolist() == [4.25, 3.5, 2.0] and not said  # sorted by path
    # Edited: a score changed, a row removed. The build is made again, and says so.
    (manual / "scores.csv").write_text("path,score,group\nimgs/a.png,1.5,x\nc.jpg,4.25,y\n")
    records = datasets.load_records("iqa_csv", manual, data_dir=tmp_path / "tfds", log=said.append)
    assert records.relative_paths == ["c.jpg", "imgs/a.png"]
    assert records.scores.tolist() == [4.25, 1.5] and records.groups == ["y", "x"]
    assert len(said) == 1 and "changed since" in said[0]
    # Unchanged: the build is reused as it is.
    again = datasets.load_records("iqa_csv", manual, data_dir=tmp_path / "tfds", log=said.append)
    assert again.scores.tolist() == [4.25, 1.5] and len(said) == 1
