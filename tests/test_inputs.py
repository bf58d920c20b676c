"""Command-line inputs: files, recursive folders, CSV and text lists, in order."""

import os
from pathlib import Path

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


def test_entries_are_kept_as_written_and_csv_columns_carried(dataset, tmp_path, monkeypatch):
    (dataset / "labels.csv").write_text(
        "MOS,Image_path,MOS\n3.1,images/b.jpg,x\n4.0,images/deep/c.JPEG,y\n")
    (dataset / "plain.csv").write_text("images/a.png,1,q\n")
    monkeypatch.chdir(dataset.parent)
    expanded = expand_inputs(["koniq/labels.csv", "koniq/images/a.png", "koniq/images/deep",
                              "koniq/plain.csv"])
    assert expanded.entries == ["images/b.jpg", "images/deep/c.JPEG", "koniq/images/a.png",
                                "koniq/images/deep/c.JPEG", "images/a.png"]
    assert expanded.paths[0] == str(dataset / "images" / "b.jpg")
    assert all(os.path.isabs(p) for p in expanded.paths)
    # Named columns from the header (a repeated name gets a suffix), numbered ones
    # for a CSV without a header; '' where an image has no such column.
    assert expanded.columns == {"MOS": ["3.1", "4.0", "", "", ""],
                                "MOS_2": ["x", "y", "", "", ""],
                                "2": ["", "", "", "", "1"], "3": ["", "", "", "", "q"]}


def test_folders_keep_broken_links_and_special_files_and_follow_folder_links(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    photo(size=(32, 24)).save(root / "sub" / "a.png")
    (root / "b.jpg").symlink_to(root / "missing.jpg")  # broken: reported later by the loader
    os.mkfifo(root / "c.png")
    (root / "notes.txt").symlink_to(root / "missing.txt")  # no image extension: skipped
    (root / "sub" / "loop").symlink_to(root)  # a cycle is walked once
    (root / "linked").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").mkdir()
    photo(size=(32, 24)).save(tmp_path / "elsewhere" / "d.png")
    expanded = expand_inputs([str(root)])
    assert [p[len(str(root)) + 1:] for p in expanded.paths] == [
        "b.jpg", "c.png", "linked/d.png", "sub/a.png"]
    assert [Path(p).name for p in expanded.skipped] == ["notes.txt"]


@pytest.mark.parametrize("header, column", [
    ("MOS,name", "name"), ("Image_path,path,MOS", "Image_path"), ("score,file,group", "file"),
])
def test_image_lists_and_scores_files_find_the_path_column_alike(tmp_path, header, column):
    from reiqa_jax.scoring.scores_csv import read_scores_csv

    names = header.split(",")
    row = {name: ("3.5" if name.lower() in ("mos", "score") else "x") for name in names}
    row[column] = "img.png"
    photo(size=(8, 8)).save(tmp_path / "img.png")
    (tmp_path / "list.csv").write_text(header + "\n" + ",".join(row[n] for n in names) + "\n")
    assert expand_inputs([str(tmp_path / "list.csv")]).entries == ["img.png"]
    scores = read_scores_csv(tmp_path / "list.csv")
    assert scores.entries == ["img.png"] and scores.scores.tolist() == [3.5]
