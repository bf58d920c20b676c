"""The demo's evaluation set: which photos, held out from training, split by scene."""
import numpy as np
import pytest
from demo_testing import labels_only

from reiqa_jax.config_file import load_config
from reiqa_jax.demo import measure, photos
from reiqa_jax.demo.iqa_set import make_labelled_set


def test_test_photos_are_held_out_from_training_and_from_the_recipe_choice():
    assert not set(photos.TEST) & set(photos.VALIDATION)
    # the demo trains on dead leaves and bundled non-photographs (tests/test_demo_config.py)
    assert load_config("demo").data.startswith("synthetic:")
    # every natural photo the three packages bundle is a test photo
    assert {"astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "china", "flower",
            "grace_hopper", "motorcycle_left", "motorcycle_right"} <= set(photos.TEST)


@pytest.fixture(scope="module")
def test_pictures():
    return {name: photos.cover_crop(photos.load_photo(name)) for name in photos.TEST}


def test_every_test_photo_loads_from_its_package(test_pictures):
    for name, picture in test_pictures.items():
        assert picture.shape == (*photos.IMAGE_HW, 3) and picture.dtype == np.uint8, name
        assert picture.std() > 20, name
    assert len({p.tobytes() for p in test_pictures.values()}) == len(photos.TEST)


def test_twenty_splits_disjoint_by_scene_with_two_test_scenes_each():
    labelled = labels_only(photos.TEST)
    assert len(set(labelled.scenes)) == 10   # the stereo pair is one scene
    splits = measure.splits(labelled, n_splits=20)
    assert len(splits) == 20
    tests = set()
    for train, val, test in splits:
        parts = [set(labelled.scenes[idx]) for idx in (train, val, test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert len(parts[2]) >= 2 and sum(map(len, parts)) == 10
        assert len(train) + len(val) + len(test) == len(labelled)
        both = set(labelled.photos[test]) & {"motorcycle_left", "motorcycle_right"}
        assert both in (set(), {"motorcycle_left", "motorcycle_right"})
        tests.add(frozenset(parts[2]))
    assert len(tests) > 10   # the splits differ


def test_labelled_set_is_written_once_with_certain_labels(tmp_path):
    kinds = ("jpeg", "darken")
    made = make_labelled_set(tmp_path, ("coffee", "camera"), kinds, hw=(48, 64))
    assert len(made) == 2 * (2 * 5 + 1)
    series = made.series("camera", "darken")
    assert made.kinds[series[0]] == "pristine" and list(made.levels[series[1:]]) == [0, 1, 2, 3, 4]
    assert list(made.scores[series]) == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    from PIL import Image

    first = np.asarray(Image.open(made.paths[series[1]]))
    assert first.shape == (48, 64, 3)
    stamp = (tmp_path / "camera_darken_4.png").stat().st_mtime_ns
    again = make_labelled_set(tmp_path, ("coffee", "camera"), kinds, hw=(48, 64))
    assert again.paths == made.paths and (tmp_path / "camera_darken_4.png").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="distinct names"):
        make_labelled_set(tmp_path / "x", ("/a/one.png", "/b/one.png"), kinds, hw=(48, 64))


def test_series_measures_count_every_test_series_of_every_split():
    """series_srcc and pristine_above read each test photo's series (split_series) from the
    protocol's test predictions: here jpeg is predicted in order on every
    photo, darken in order except on camera, whose level 4 beats its pristine."""
    from types import SimpleNamespace

    labelled = labels_only(photos.TEST)
    prediction = labelled.scores.copy()
    camera_dark = (labelled.photos == "camera") & (labelled.kinds == "darken")
    prediction[camera_dark & (labelled.levels == 4)] = 9.0
    splits = [SimpleNamespace(test=test, test_prediction=prediction[test])
              for _, _, test in measure.splits(labelled, n_splits=20)]
    result = SimpleNamespace(splits=splits)
    read = lambda: measure.split_series(result, labelled)
    in_test = [set(labelled.photos[s.test]) for s in splits]
    series = sum(len(p) for p in in_test)
    with_camera = sum("camera" in p for p in in_test)
    assert with_camera > 0
    above = measure.pristine_above(read())
    assert above == {"jpeg": 1.0, "darken": pytest.approx(1 - with_camera / series)}
    # every kind at once: fails exactly on the test photos that are camera
    assert measure.pristine_above_every_kind(read()) == pytest.approx(
        1 - with_camera / series)
    srcc = measure.series_srcc(read(), labelled)
    assert srcc["jpeg"] == pytest.approx(1.0)
    # camera's darken series ranks level 4 first: rank differences 1, 1, 1, 1, 1, 5,
    # SRCC 1 - 6 * 30 / (6 * 35) there
    assert srcc["darken"] == pytest.approx(1 - with_camera / series * (6 * 30 / 210))
    prediction[(labelled.photos == "coffee") & (labelled.kinds == "jpeg")
               & (labelled.levels == 4)] = 9.0  # coffee now fails on jpeg alone
    for split in splits:
        split.test_prediction = prediction[split.test]
    with_coffee = sum("coffee" in p for p in in_test)
    assert measure.pristine_above(read())["jpeg"] == pytest.approx(
        1 - with_coffee / series)
    assert measure.pristine_above_every_kind(read()) == pytest.approx(
        1 - (with_camera + with_coffee) / series)


def test_one_kind_alone_uses_only_that_kinds_series():
    """A feature that is the label on jpeg's series and says nothing on darken's:
    jpeg alone ranks perfectly, darken alone does not, and scrambling the darken
    rows does not change jpeg's figure (its fits never see them)."""
    labelled = labels_only(photos.TEST)
    darken = labelled.kinds == "darken"
    x = np.where(darken, 2.0, labelled.scores)[:, None]
    alone = measure.one_kind_alone(x, labelled)
    assert set(alone) == {"jpeg", "darken"}
    assert alone["jpeg"] == pytest.approx(1.0)
    assert alone["darken"] < 0.9
    scrambled = x.copy()
    scrambled[darken, 0] = np.random.default_rng(0).normal(size=darken.sum())
    assert measure.one_kind_alone(scrambled, labelled)["jpeg"] == alone["jpeg"]
