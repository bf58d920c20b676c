"""Scores CSVs and their join to features."""

import numpy as np
import pytest

from reiqa_jax.scoring.features import load_features
from reiqa_jax.scoring.scores_csv import ScoresCsvError, join_scores, read_scores_csv


def test_scores_csv_and_join(tmp_path):
    (tmp_path / "imgs").mkdir()
    csv_path = tmp_path / "scores.csv"
    csv_path.write_text("path,score,group\nimgs/a.png,1.5,r1\nimgs/b.png,2,r1\n"
                        "imgs/c.png,3,r2\nimgs/missing.png,4,r2\nimgs/bad.png,5,r3\n"
                        "imgs/a.png,9,r1\n")
    rows = read_scores_csv(csv_path)
    assert rows.entries[0] == "imgs/a.png" and rows.scores.tolist() == [1.5, 2, 3, 4, 5, 9]
    assert rows.groups == ["r1", "r1", "r2", "r2", "r3", "r1"]
    assert rows.resolved[0] == str((tmp_path / "imgs" / "a.png").resolve())
    # An npz as `reiqa extract` writes it: entries as written, for a and c; b only by path.
    feats = tmp_path / "f.npz"
    np.savez(feats, paths=np.array([str(tmp_path / "imgs/a.png"), str(tmp_path / "imgs/c.png"),
                                    str(tmp_path / "imgs/b.png")]),
             entries=np.array(["imgs/a.png", "imgs/c.png", "elsewhere/b.png"]),
             quality=np.ones((3, 4), np.float32), content=np.zeros((3, 4), np.float32),
             failed=np.array([str(tmp_path / "imgs/bad.png")]),
             failed_entries=np.array(["imgs/bad.png"]), errors=np.array(["truncated"]),
             quality_ckpt=np.array("/q"), content_ckpt=np.array(""))
    features = load_features(feats)
    assert features.checkpoints == {"quality": "/q", "content": ""}
    assert features.matrix(("content", "quality")).shape == (3, 8)
    joined = join_scores(features, rows)
    assert joined.index.tolist() == [0, 2, 1] and joined.scores.tolist() == [1.5, 2, 3]
    assert joined.groups == ["r1", "r1", "r2"]
    assert joined.unmatched == ["imgs/missing.png"] and joined.failed == ["imgs/bad.png"]
    assert joined.duplicates == ["imgs/a.png"]
    # Today's npz (no entries) joins on resolved paths; a CSV without header works too.
    old = tmp_path / "old.npz"
    np.savez(old, paths=np.array(["imgs/c.png"]), quality=np.ones((1, 4), np.float32),
             failed=np.array([], str), errors=np.array([], str))
    plain = tmp_path / "plain.csv"
    plain.write_text("imgs/c.png,3.0\n")
    import os
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the old npz's relative paths are relative to where extract ran
    try:
        joined = join_scores(load_features(old), read_scores_csv(plain))
    finally:
        os.chdir(cwd)
    assert joined.index.tolist() == [0] and joined.groups is None
    bad = tmp_path / "bad.csv"
    bad.write_text("path,score\na.png,good\n")
    with pytest.raises(ScoresCsvError, match="not a number"):
        read_scores_csv(bad)
    # a header alone, and an image given in the CSV's place: said as such, in one line
    bad.write_text("path,score\n")
    with pytest.raises(ScoresCsvError, match="has a header and no rows"):
        read_scores_csv(bad)
    bad.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\xff\xdb")
    with pytest.raises(ScoresCsvError, match="is not a text file; give a scores CSV"):
        read_scores_csv(bad)


