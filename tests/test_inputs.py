"""Command-line inputs: files, recursive folders, CSV and text lists, in order."""

import pytest

from bad_inputs import photo
from reiqa_jax.inputs import InputError, expand_inputs


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "koniq"
    (root / "images" / "deep").mkdir(parents=True)
    names = ["b.jpg", "a.png", "deep/c.JPEG"]
    for name in names:
        photo(size=(32, 24)).save(root / "images" / name)
    (root / "images" / "readme.md").write_text("# not an image")
    return root


def test_folder_is_recursive_sorted_and_skips_other_files(dataset):
    expanded = expand_inputs([str(dataset / "images")])
    assert [p.split("images/")[1] for p in expanded.paths] == ["a.png", "b.jpg", "deep/c.JPEG"]
    assert [p.split("images/")[1] for p in expanded.paths] == sorted(
        p.split("images/")[1] for p in expanded.paths)
    assert len(expanded.skipped) == 1 and expanded.skipped[0].endswith("readme.md")


def test_csv_with_a_path_column_resolves_relative_to_the_list(dataset, tmp_path, monkeypatch):
    # The official training CSV layout: an `Image_path` column among others.
    (dataset / "labels.csv").write_text(
        "MOS,Image_path\n3.1,images/b.jpg\n4.0,images/deep/c.JPEG\n")
    monkeypatch.chdir(tmp_path)  # the list's folder, not the working directory, anchors paths
    expanded = expand_inputs([str(dataset / "labels.csv")])
    assert expanded.paths == [str(dataset / "images/b.jpg"), str(dataset / "images/deep/c.JPEG")]


def test_csv_without_header_uses_first_column(dataset):
    (dataset / "plain.csv").write_text("images/a.png,1\nimages/b.jpg,2\n")
    assert [p.rsplit("/", 1)[1] for p in expand_inputs([str(dataset / "plain.csv")]).paths] == [
        "a.png", "b.jpg"]


def test_text_list_with_comments_and_order_across_inputs(dataset):
    (dataset / "list.txt").write_text("# held-out\nimages/b.jpg\n\nimages/a.png  # ref\n")
    single = dataset / "images" / "deep" / "c.JPEG"
    expanded = expand_inputs([str(single), str(dataset / "list.txt")])
    assert [p.rsplit("/", 1)[1] for p in expanded.paths] == ["c.JPEG", "b.jpg", "a.png"]


def test_missing_input_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="input does not exist: .*nowhere"):
        expand_inputs([str(tmp_path / "nowhere")])
