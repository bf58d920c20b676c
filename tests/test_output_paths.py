"""The one rule for folders a command writes: new, empty, or its own kind (with overwrite)."""
import pytest

from reiqa_jax.errors import ReiqaError
from reiqa_jax.output_paths import check_output_folder, unwritable_parent


class Refused(ReiqaError):
    pass


def check(path, overwrite=False):
    return check_output_folder(path, kind="model", marker="reiqa_model.json",
                               overwrite=overwrite, error=Refused, label="--save ")


def test_new_empty_and_own_kind_with_overwrite_are_taken(tmp_path):
    assert check(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    (tmp_path / "empty").mkdir()
    assert check(tmp_path / "empty") == tmp_path / "empty"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "reiqa_model.json").write_text("{}")
    assert check(tmp_path / "mine", overwrite=True) == tmp_path / "mine"


@pytest.mark.parametrize("case, overwrite, needle", [
    ("file", True, "--save {p} is a file; give a folder for the model"),
    ("others", True, "--save {p} exists and is not a model folder"),
    ("mine", False, "--save {p} already exists; pass --overwrite to replace it"),
])
def test_refusals_are_one_line_and_change_nothing(tmp_path, case, overwrite, needle):
    path = tmp_path / case
    if case == "file":
        path.write_text("keep me")
    else:
        path.mkdir()
        name = "reiqa_model.json" if case == "mine" else "notes.txt"
        (path / name).write_text("keep me")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(Refused) as info:
        check(path, overwrite=overwrite)
    assert str(info.value) == needle.format(p=path) or \
        str(info.value).startswith(needle.format(p=path))
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_a_folder_that_cannot_be_created_is_refused(tmp_path):
    (tmp_path / "a_file").write_text("x")
    below = tmp_path / "a_file" / "below"
    assert unwritable_parent(below / "deeper") == tmp_path / "a_file"
    assert unwritable_parent(tmp_path / "new" / "deeper") is None
    with pytest.raises(Refused, match=f"cannot write {below}: {tmp_path / 'a_file'} is not a "
                                      f"writable folder"):
        check(below)
