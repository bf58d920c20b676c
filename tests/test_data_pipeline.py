"""The trainer's input: which image feeds which slot of which step, skipping
unreadable files, tiles, grain iterators, resumption by step."""
import numpy as np
import pytest

from reiqa_jax.data import pipeline, sources
from reiqa_jax.data.pipeline import InputSpec, LoadSlot, make_local_batches
from train_testing import write_photos


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = write_photos(tmp_path_factory.mktemp("photos"), n=10)
    return sorted(str(p) for p in folder.iterdir())


def _spec(paths, **kw):
    base = dict(paths=tuple(paths), seed=0, global_batch=4, local_batch=4, process_offset=0,
                tile_hw=(64, 96))
    base.update(kw)
    return InputSpec(**base)


def _image_of(spec, element):
    step, slot = divmod(element, spec.local_batch)
    epoch, pos = pipeline.slot_position(spec, step, spec.process_offset + slot)
    order = pipeline.epoch_permutation(spec.seed, epoch, len(spec.paths))
    return order[pos % len(spec.paths)]


def test_epochs_cover_every_image_and_wrap_the_last_batch(photos):
    spec = _spec(photos)  # 10 images, 4 per step: 3 steps per epoch, last one wraps
    assert spec.steps_per_epoch == 3
    for epoch in range(2):
        seen = [_image_of(spec, e) for e in range(epoch * 12, epoch * 12 + 12)]
        assert set(seen) == set(range(10))
        assert seen[10:] == seen[:2]  # slots 10, 11 wrap around to the epoch's start
    # epochs are shuffled differently
    assert [_image_of(spec, e) for e in range(10)] != [_image_of(spec, e) for e in range(12, 22)]


def test_process_split_does_not_change_the_global_batch(photos):
    whole = _spec(photos, global_batch=4, local_batch=4)
    halves = [_spec(photos, global_batch=4, local_batch=2, process_offset=2 * p)
              for p in range(2)]
    for step in range(5):
        want = [_image_of(whole, step * 4 + s) for s in range(4)]
        got = [_image_of(h, step * 2 + s) for h in halves for s in range(2)]
        assert got == want
        t_whole = LoadSlot(whole)(step * 4 + 3)
        t_half = LoadSlot(halves[1])(step * 2 + 1)
        np.testing.assert_array_equal(t_whole["pixels"], t_half["pixels"])


def test_unreadable_image_is_skipped_counted_and_replaced(photos, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(open(photos[0], "rb").read()[:300])  # truncated
    paths = photos[:3] + [str(bad), str(tmp_path / "missing.png")] + photos[3:]
    spec = _spec(paths)
    slots = [LoadSlot(spec)(e) for e in range(spec.steps_per_epoch * 4)]
    assert sum(int(s["skipped"]) for s in slots) >= 2
    for s in slots:
        assert s["pixels"].shape == (64, 96, 3) and s["pixels"].dtype == np.uint8
    err = capsys.readouterr().err
    assert "skipped unreadable image" in err and "broken.jpg" in err and "missing.png" in err
    # a list with nothing readable is an error, not an endless loop
    with pytest.raises(RuntimeError, match="unreadable images in a row"):
        LoadSlot(_spec([str(bad)] * 3, max_tries=3))(0)


def test_iterator_from_a_step_continues_the_full_sequence(photos):
    spec = _spec(photos)
    full = list(make_local_batches(spec, 0, 5, threads=2))
    tail = list(make_local_batches(spec, 2, 5, workers=2, threads=1))  # worker processes too
    assert len(full) == 5 and len(tail) == 3
    for a, b in zip(full[2:], tail):
        for name in ("pixels", "valid_hw", "transposed", "skipped"):
            np.testing.assert_array_equal(a[name], b[name])
    assert full[0]["pixels"].shape == (4, 64, 96, 3)
    assert full[0]["valid_hw"].dtype == np.int32 and full[0]["transposed"].dtype == bool


def test_training_image_sources(photos, tmp_path):
    assert sources.training_images(str(tmp_path.parent / photos[0].split("/")[-2])) == photos
    csv = tmp_path / "moco_train.csv"
    rel = [p.split("/")[-1] for p in photos[:3]]
    (tmp_path / "imgs").mkdir()
    for p, r in zip(photos[:3], rel):
        (tmp_path / "imgs" / r).write_bytes(open(p, "rb").read())
    csv.write_text("Image_path\n" + "".join(f"imgs/{r}\n" for r in rel))
    assert sources.training_images(str(csv)) == [str(tmp_path / "imgs" / r) for r in rel]
    for bad, msg in (("", "no training data"), (str(tmp_path / "nope"), "does not exist"),
                     (photos[0], "neither a folder")):
        with pytest.raises(sources.DataError, match=msg):
            sources.training_images(bad)
