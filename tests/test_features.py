"""The features file (one reader, one writer) and the shard store behind extract, score
and evaluate: rows kept while their image files and settings are unchanged."""

import os

import numpy as np
import pytest

from bad_inputs import photo
from reiqa_jax.scoring.features import (Features, FeaturesError, ShardStore, ShardStoreError,
                                        fill_store, load_features)


def test_load_features_refuses_what_is_not_a_features_file(tmp_path):
    good = Features(paths=["/a.png", "/b.png"], quality=np.ones((2, 4), np.float32),
                    content=None, failed=["/c.png"], errors=["truncated"]).save_npz(tmp_path / "f")
    assert good.name == "f.npz"
    loaded = load_features(good)
    assert list(loaded.blocks) == ["quality"] and loaded.matrix(["quality"]).shape == (2, 4)
    assert loaded.checkpoints == {"quality": "", "content": ""}
    (tmp_path / "scores.csv").write_text("path,score\na.png,3\n")
    whole = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    for name, message in (("scores.csv", "is not a features .npz"),
                          ("cut.npz", "cannot read features"),
                          ("other.npz", "has no 'paths' array"),
                          ("missing.npz", "no such file")):
        with pytest.raises(FeaturesError, match=message) as info:
            load_features(tmp_path / name)
        assert "\n" not in str(info.value) and "pickled" not in str(info.value)


class _Batch:
    def __init__(self, indices, rows, failures=()):
        self.indices, self.features, self.failures = indices, {"q": rows}, list(failures)


def test_shard_store_reuses_rows_while_files_and_settings_stay(tmp_path):
    images = []
    for i in range(4):
        images.append(str(tmp_path / f"{i}.png"))
        photo(size=(16 + i, 12)).save(images[-1])
    store_dir = tmp_path / "store"
    settings = {"model": "m1", "dtype": "float32"}
    store = ShardStore(store_dir, settings, blocks=["q"])
    batches = [_Batch([0, 1], np.array([[0.0], [1.0]])), _Batch([2], np.array([[2.0]]), [(3, "bad")])]
    failures, stopped = fill_store(store, iter(batches), images, save_every=0)
    assert failures == {images[3]: "bad"} and not stopped and len(store) == 3
    store.record_failures(failures)
    with pytest.raises(ShardStoreError, match="another reiqa evaluate is writing"):
        ShardStore(store_dir, settings, blocks=["q"], owner="reiqa evaluate")
    store.close()

    # Reopened: the rows and the failure are known while the files are unchanged.
    store = ShardStore(store_dir, settings, blocks=["q"])
    assert [store.is_done(p) for p in images] == [True, True, True, False]
    assert store.failure(images[3]) == "bad"
    assert store.rows(images[:3])["q"][:, 0].tolist() == [0.0, 1.0, 2.0]
    photo(size=(30, 30)).save(images[1])  # an edited image is computed again
    os.utime(images[3], ns=(1, 1))        # and a touched failure tried again
    assert not store.is_done(images[1]) and store.failure(images[3]) is None
    # A cache keeps only the images still asked for, in one shard.
    assert store.compact(images[:1]) and len(store) == 1
    assert len(list(store_dir.glob("shard-*.npz"))) == 1
    assert store.rows(images[:1])["q"][0, 0] == 0.0
    store.close()

    # Other settings: refused by default, discarded when asked.
    with pytest.raises(ShardStoreError, match="model: 'm1' there, 'm2' now"):
        ShardStore(store_dir, {"model": "m2", "dtype": "float32"}, blocks=["q"])
    store = ShardStore(store_dir, {"model": "m2", "dtype": "float32"}, blocks=["q"],
                       if_changed="discard")
    assert store.changed == ["model"] and len(store) == 0
    assert not list(store_dir.glob("shard-*.npz"))
    store.close()


def test_fill_store_saves_what_is_finished_when_asked_to_stop(tmp_path):
    images = [str(tmp_path / f"{i}.png") for i in range(3)]
    for path in images:
        photo(size=(8, 8)).save(path)
    store = ShardStore(tmp_path / "store", {}, blocks=["q"])
    batches = iter([_Batch([0], np.array([[5.0]])), _Batch([1], np.array([[6.0]])),
                    _Batch([2], np.array([[7.0]]))])
    failures, stopped = fill_store(store, batches, images, should_stop=lambda: True,
                                   save_every=1e9)
    assert stopped and failures == {} and len(store) == 1  # saved at once, then stopped
    assert next(batches).indices == [1]  # nothing more was taken
    store.close()
    assert ShardStore(tmp_path / "store", {}, blocks=["q"]).is_done(images[0])
