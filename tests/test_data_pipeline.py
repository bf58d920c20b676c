"""The trainer's input: canvas classes of whole pictures, which picture feeds
which slot of which step, skipping unreadable files, grain iterators,
resumption by step."""
import numpy as np
import pytest

from reiqa_jax.data import canvases, pipeline, sources
from reiqa_jax.data.pipeline import InputSpec, LoadSlot, make_local_batches
from train_testing import write_photos


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = write_photos(tmp_path_factory.mktemp("photos"), n=10)  # 80-89 x 91-100
    return sorted(str(p) for p in folder.iterdir())


def _spec(paths, step=32, min_count=4, **kw):
    classes = pipeline.quality_classes(pipeline.read_sizes(paths, 2), step=step, max_side=1024,
                                       min_count=min_count)
    base = dict(paths=tuple(paths), seed=0, global_batch=4, local_batch=4, process_offset=0,
                canvases=classes.canvases, class_of=classes.class_of, exact=classes.exact)
    base.update(kw)
    return InputSpec(**base)


def _picture(spec, step, slot):
    return spec.plan.slot(step, slot)[1]


def test_classes_hold_whole_pictures(photos):
    spec = _spec(photos)
    sizes = pipeline.read_sizes(photos)
    # widths 91-100 at multiples of 32: two canvases, 4 and 6 pictures
    assert spec.canvases == ((96, 96), (96, 128)) and spec.exact == (False, False)
    for (h, w), k in zip(sizes, spec.class_of):
        ch, cw = spec.canvases[k]
        assert h <= ch < h + 32 and w <= cw < w + 32
    # one class per step: ceil(6 / 4) + ceil(4 / 4) steps per epoch
    assert spec.steps_per_epoch == 3
    for step in range(9):
        ks = {spec.plan.slot(step, s)[0] for s in range(4)}
        assert len(ks) == 1
    for e in range(3):
        seen = [_picture(spec, step, s) for step in range(3 * e, 3 * e + 3) for s in range(4)]
        assert set(seen) == set(range(10))  # every picture every epoch
    # epochs are shuffled differently
    first = [_picture(spec, s, 0) for s in range(3)]
    assert first != [_picture(spec, s, 0) for s in range(3, 6)]


def test_loaded_canvas_is_the_whole_picture(photos):
    from PIL import Image

    spec = _spec(photos)
    for element in range(12):
        step, slot = divmod(element, 4)
        k, index, _ = spec.plan.slot(step, slot)
        out = LoadSlot(spec)(element)
        picture = np.asarray(Image.open(photos[index]).convert("RGB"))
        h, w = picture.shape[:2]
        assert out["pixels"].shape == spec.canvases[k] + (3,)
        assert tuple(out["valid_hw"]) == (h, w) and out["valid_hw"].dtype == np.int32
        np.testing.assert_array_equal(out["pixels"][:h, :w], picture)
        assert not out["pixels"][h:].any() and not out["pixels"][:, w:].any()


def test_canvas_assignment_rules():
    # portrait and landscape keep their orientation; small classes merge
    sizes = [(480, 640)] * 10 + [(640, 480)] * 10 + [(427, 640)] * 3 + [(1500, 2000)] * 5
    cs, class_of = canvases.assign_canvases(sizes, step=32, max_side=1024, min_count=5)
    got = {tuple(s): cs[k] for s, k in zip(sizes, class_of)}
    assert got[(640, 480)] == (640, 480)
    assert got[(480, 640)] == got[(427, 640)] == (480, 640)  # 3 < 5: joined the 480 x 640s
    assert got[(1500, 2000)] == (1024, 1024)  # cut to windows of the largest canvas
    counts = np.bincount(class_of)
    assert counts.min() >= 5
    # the same sizes in another order: the same classes
    cs2, class_of2 = canvases.assign_canvases(sizes[::-1], step=32, max_side=1024, min_count=5)
    assert cs2 == cs and np.array_equal(class_of2, class_of[::-1])


def test_compiled_shapes_on_a_coco_like_list():
    """A COCO-like size list (long side 640, the usual aspect ratios, a few
    pixels of jitter, both orientations): few canvases, little padding."""
    sizes = canvases.coco_like_sizes(20000, seed=0)
    area = np.prod(np.asarray(sizes), axis=1).sum()
    for batch, max_classes, bound in ((630, 0, 10), (64, 0, 24), (64, 8, 8)):
        cs, class_of = canvases.assign_canvases(sizes, step=32, max_side=1024, min_count=batch,
                                                max_classes=max_classes)
        assert len(cs) <= bound, (batch, len(cs))
        assert np.bincount(class_of).min() >= batch
        padded = sum(cs[k][0] * cs[k][1] for k in class_of)
        assert area / padded > 0.95, (batch, area / padded)


def test_process_split_does_not_change_the_global_batch(photos):
    whole = _spec(photos)
    halves = [_spec(photos, local_batch=2, process_offset=2 * p) for p in range(2)]
    for step in range(5):
        want = [_picture(whole, step, s) for s in range(4)]
        got = [_picture(h, step, h.process_offset + s) for h in halves for s in range(2)]
        assert got == want
        np.testing.assert_array_equal(LoadSlot(whole)(step * 4 + 3)["pixels"],
                                      LoadSlot(halves[1])(step * 2 + 1)["pixels"])


def test_unreadable_image_is_skipped_counted_and_replaced(photos, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(open(photos[0], "rb").read()[:300])  # truncated after the header
    paths = photos[:3] + [str(bad), str(tmp_path / "missing.png")] + photos[3:]
    spec = _spec(paths)
    slots = [LoadSlot(spec)(e) for e in range(spec.steps_per_epoch * 4)]
    assert sum(int(s["skipped"]) for s in slots) >= 2
    for s in slots:
        assert s["pixels"].dtype == np.uint8 and s["pixels"].shape[0] == 96
    err = capsys.readouterr().err
    assert "skipped unreadable image" in err and "broken.jpg" in err and "missing.png" in err
    # a list with nothing readable is an error, not an endless loop
    with pytest.raises(RuntimeError, match="unreadable images in a row"):
        LoadSlot(_spec([str(bad)] * 3, max_tries=3))(0)
    capsys.readouterr()
    # one loader (as in one input process) over three epochs: each bad file is
    # counted every time it is drawn and named once
    loader = LoadSlot(spec)
    skipped = sum(int(loader(e)["skipped"]) for e in range(spec.steps_per_epoch * 4 * 3))
    lines = capsys.readouterr().err.strip().splitlines()
    assert skipped >= 6 and len(lines) == 2, lines
    assert sum("broken.jpg" in line for line in lines) == 1


def test_iterator_from_a_step_continues_the_full_sequence(photos):
    spec = _spec(photos)
    full = list(make_local_batches(spec, 0, 6, threads=2))
    tail = list(make_local_batches(spec, 2, 6, workers=2, threads=1))  # worker processes too
    assert len(full) == 6 and len(tail) == 4
    for a, b in zip(full[2:], tail):
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    shapes = {b["pixels"].shape for b in full}
    assert shapes == {(4, 96, 96, 3), (4, 96, 128, 3)}  # steps of both canvases
    assert full[0]["valid_hw"].dtype == np.int32


def test_exact_class_carries_no_sizes(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        p = tmp_path / f"k{i}.png"
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    spec = _spec(paths)
    assert spec.exact == (True,)
    batch = next(make_local_batches(spec, 0, 1, threads=1))
    assert set(batch) == {"pixels", "skipped"}  # static sizes: the views need none


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


def test_one_compiled_views_program_per_canvas(photos):
    import jax

    from augment_testing import STANDINS, count_compiles
    from reiqa_jax.augment import QualityViewConfig, make_quality_views

    spec = _spec(photos)
    cfg = QualityViewConfig(patch_size=32, n_aug=1)
    with count_compiles() as compiles:
        for step, batch in enumerate(make_local_batches(spec, 0, 6, threads=2)):
            views, _ = make_quality_views(jax.random.key(step), batch["pixels"], cfg,
                                          batch.get("valid_hw"), ops=STANDINS)
            assert views.shape == (4, 4, 32, 32, 6)
    assert compiles["make_quality_views"] == len(spec.canvases) == 2, compiles


def test_pictures_under_the_crop_region_and_unusable_ones_are_reported(photos, tmp_path, capsys):
    """One line each, up front: pictures whose scale-1 crops will hold the
    official CenterCrop's zero padding, and files the pipeline cannot use."""
    import ml_collections

    from reiqa_jax import train

    small = tmp_path / "small.png"
    from PIL import Image
    Image.new("RGB", (70, 60), (90, 120, 30)).save(small)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    paths = photos + [str(small), str(broken)]
    classes = pipeline.quality_classes(pipeline.read_sizes(paths, 2), step=32, max_side=1024,
                                       min_count=4)
    config = ml_collections.ConfigDict({"views": {"patch_size": 64}})  # region 64 + 56 = 120
    train.report_small_pictures(config, paths, classes)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert "11 of the 12 training images are under the 120-pixel crop region" in lines[0]
    assert "photo_00.jpg 100x80" in lines[0]
    assert lines[1].startswith("reiqa train: 1 of the 12 training images have an unreadable")
    config.views.patch_size = 32  # region 59: the photos (80-89 x 91-100) hold it
    train.report_small_pictures(config, photos, pipeline.quality_classes(
        pipeline.read_sizes(photos, 2), step=32, max_side=1024, min_count=4))
    assert capsys.readouterr().err == ""
    train.report_small_pictures(config, photos, None)  # content branch: nothing to say
    assert capsys.readouterr().err == ""
