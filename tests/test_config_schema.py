"""Config and training-data mistakes are one line and exit 2 before anything is
computed or written (``reiqa_jax.config_schema``, ``data.sources``), as a user
runs ``reiqa train``."""
import csv

import pytest

import train_testing as tt
from reiqa_jax import cli, config_schema
from reiqa_jax.augment.op_sets import OP_SETS
from reiqa_jax.config_file import available_configs, load_config


def _train(tmp_path, capsys, *args):
    """Runs ``reiqa train --config smoke`` in this process; returns (status,
    stderr lines, whether the workdir exists)."""
    workdir = tmp_path / "run"
    status = cli.main(["train", "--config", "smoke", "--workdir", str(workdir), *args])
    return status, capsys.readouterr().err.strip().splitlines(), workdir.exists()


BAD_VALUES = [
    ("dtype=float16", "dtype must be one of auto, float32, bfloat16; got 'float16'"),
    ("lr_schedule=linear", "lr_schedule must be one of official, cosine, step"),
    ("optimizer=adam", "optimizer must be one of lars, sgd"),
    ("branch=both", "branch must be one of quality, content"),
    ("model.depth=19", "model.depth must be one of 10, 18, 34, 50, 101; got 19"),
    ("views.patch_size=300", "views.patch_size 300 is larger than the largest canvas "
                             "(canvas.max_side 256)"),
    ("views.patch_size=2", "views.patch_size 2 is too small for the official overlapping"),
    ("canvas.max_side=20", "canvas.max_side must be at least 49"),
    ("lr_decay_epochs=(120,-1)", "lr_decay_epochs must be at least 1"),
    ("tile_hw=(0,96)", "tile_hw must be at least 1"),
    ("num_steps=-5", "num_steps must be at least 0, got -5"),
    ("input.workers=-1", "input.workers must be at least 0, got -1"),
    ("views.n_aug=27", "views.n_aug must be at most 26"),
    ("views.ops=nope", "views.ops must be one of official, stand_in or only:KIND,KIND,..."),
    ("views.ops=only:jpg", "views.ops only:jpg: unknown kind 'jpg'; the kinds are gaussian_blur,"),
    ("momentum=1.5", "momentum must be at most 1"),
    ("learning_rate=nan", "learning_rate must be a finite number"),
    ("queue_size=16", "keys per step do not fit queue_size 16"),
    ("num_epochs=0", "set num_epochs >= 1 or num_steps >= 1"),
]


@pytest.mark.parametrize("override,message", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_a_bad_value_is_one_line_before_anything_is_written(override, message, tmp_path,
                                                            capsys):
    status, err, created = _train(tmp_path, capsys, f"--config.{override}")
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith("reiqa train: error: ") and message in err[0], err
    assert not created  # no empty workdir left behind


@pytest.mark.parametrize("negatives", ["queue+pristine", "queue+siblings"])
def test_pristine_and_sibling_negatives_need_the_quality_branch(tmp_path, capsys, negatives):
    status, err, created = _train(tmp_path, capsys, "--config.branch=content",
                                  f"--config.negatives={negatives}")
    assert status == 2 and len(err) == 1, err
    assert f"negatives {negatives} needs the quality branch" in err[0], err
    assert not created


def test_a_config_file_with_an_unknown_missing_or_mistyped_key(tmp_path, capsys):
    cases = {"c.batchsize = 4": "unknown config key batchsize",
             "del c.input['prefetch']": "the config has no key input.prefetch",
             "c.input = type(c)(dict(workers='8', threads=2, prefetch=2, max_pixels=0))":
                 "input.workers must be an integer, got '8'"}
    for i, (line, message) in enumerate(cases.items()):
        path = tmp_path / f"mine_{i}.py"
        path.write_text("from reiqa_jax.config_file import load_config\n\n"
                        "def get_config():\n    c = load_config('smoke')\n"
                        f"    {line}\n    return c\n")
        status = cli.main(["train", "--config", str(path), "--workdir", str(tmp_path / "run")])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "run").exists()


def test_the_shipped_configs_and_the_op_sets_match_the_schema():
    assert set(available_configs()) >= {"smoke", "reiqa_quality_r50", "moco_v2_content_r50"}
    for name in available_configs():  # every key known, none missing, every value in range
        config_schema.check(load_config(name))
    for name in (*OP_SETS, "only:jpeg,pixelate"):  # every named set, and a subset by kind
        config = load_config("smoke")
        config.views.ops = name
        config_schema.check(config)
    # the one key config.json adds beside the config's own
    assert "record" not in {k.split(".")[0] for k in config_schema.KEYS}


def test_missing_training_images_are_counted_and_named_up_front(tmp_path, capsys):
    photos = tt.write_photos(tmp_path / "photos", n=3)
    listing = tmp_path / "train.csv"
    with open(listing, "w", newline="") as f:
        rows = [["Image_path"], *[[f"photos/{p.name}"] for p in sorted(photos.iterdir())],
                ["photos/gone_1.jpg"], ["photos/gone_2.jpg"]]
        csv.writer(f).writerows(rows)
    status, err, created = _train(tmp_path, capsys, f"--config.data={listing}")
    assert status == 2 and len(err) == 1, err
    assert (f"2 of the 5 training images in {listing} do not exist (relative paths are taken "
            f"from {tmp_path}; first: photos/gone_1.jpg, photos/gone_2.jpg)") in err[0]
    assert not created


def test_a_key_added_later_takes_its_default_for_older_runs_and_config_files():
    """``negatives`` came after runs were recorded: a config.json or a config file
    without it means the official 'queue', so resuming such a run sees no change."""
    config = load_config("smoke")
    recorded = config_schema.normalized(config_schema.flatten(config))
    del recorded["negatives"]
    assert "negatives" not in config_schema.differences(recorded, config)
    config.negatives = "queue+batch"
    assert config_schema.differences(recorded, config)["negatives"] == ("queue", "queue+batch")
    del config["negatives"]
    config_schema.check(config)
    assert config.negatives == "queue"
