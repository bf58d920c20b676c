"""The `reiqa` command itself: what it imports, how it prints help, library log noise,
and the import floors of the package."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from reiqa_jax import cli

PACKAGE = Path(cli.__file__).parent

_IMPORTED_BY = """
import sys
from reiqa_jax import cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
print("IMPORTED", " ".join(sorted(name for name in sys.modules if name.split(".")[0] in
                      {"jax", "flax", "orbax", "ml_collections", "PIL", "torch", "sklearn",
                       "matplotlib", "tensorflow_datasets", "reiqa_jax"})))
"""


def _imported_by(*argv: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", _IMPORTED_BY, *argv], capture_output=True,
                            text=True, timeout=120, check=True)
    return set(result.stdout.split("IMPORTED")[-1].split())


def test_start_up_imports_only_what_the_command_uses():
    # The list of commands needs their one-line help, no library.
    listed = _imported_by("--help")
    assert not {name for name in listed if not name.startswith("reiqa_jax")}, listed
    assert {f"reiqa_jax.commands.{name}" for name in cli.COMMANDS} <= listed
    # One command's help: that command's module alone.
    extract = _imported_by("extract", "--help")
    assert "reiqa_jax.commands.extract" in extract
    assert not {name for name in extract if name.startswith("reiqa_jax.commands.")
                and name != "reiqa_jax.commands.extract"}, extract
    assert not {name for name in extract if not name.startswith("reiqa_jax")}, extract


@pytest.mark.parametrize("command", ["convert", "export"])
def test_one_line_descriptions_are_wrapped_like_the_others(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    assert info.value.code == 0
    too_long = [line for line in text.splitlines() if len(line) > 80]
    assert not too_long, too_long


_LOGS = """
import sys
from absl import logging
from reiqa_jax import cli
import reiqa_jax.commands.extract as command

def run(args):
    logging.warning("Given directory is read only=%s", "runs/x/checkpoints")  # orbax's words
    logging.info("Creating tmp directory %s", "runs/x.tmp")
    logging.error("a library error the user must see")
    return 0

command.run = run
sys.exit(cli.main(["extract", "-o", "x.npz", "x.png"]))
"""


def test_library_warnings_and_notes_stay_off_the_commands_output(tmp_path):
    """orbax and TFDS log through absl: their warnings and notes are not for the user."""
    result = subprocess.run([sys.executable, "-c", _LOGS], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["ERROR:absl:a library error the user must see"]
    assert list(tmp_path.iterdir()) == []


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_the_command_line_above_it():
    """The floors: cli -> commands -> the library; the library never imports upwards."""
    upward = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "commands" or relative == Path("cli.py"):
            continue
        found = sorted(name for name in _imports(path)
                       if name.startswith(("reiqa_jax.commands", "reiqa_jax.cli")))
        if found:
            upward[str(relative)] = found
    assert upward == {}


def test_tfds_progress_bars_stay_off_the_commands_output(tmp_path, capfd):
    """`reiqa evaluate` builds its dataset with TFDS, whose bars describe TFDS's own files."""
    from PIL import Image

    from reiqa_jax import datasets

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(folder / f"{i}.png")
    (folder / "scores.csv").write_text("path,score\n0.png,1\n1.png,2\n2.png,3\n")
    builder = datasets.prepare("iqa_csv", manual_dir=folder, data_dir=tmp_path / "tfds")
    assert len(builder.as_data_source()["train"]) == 3
    out, err = capfd.readouterr()
    assert out == "" and "examples" not in err and "Shuffling" not in err, err


@pytest.mark.parametrize("program", ["reiqa_jax.cli", "reiqa_jax.commands.convert"])
def test_a_signal_after_the_command_returned_keeps_its_exit_status(program, tmp_path):
    """Run as a program (argv from sys.argv), a first Ctrl-C while the interpreter
    exits leaves the status the command returned (here 2, a usage error); a
    second one still stops the process."""
    import signal

    args = (["reiqa", "convert", str(tmp_path / "none.pth"), str(tmp_path / "out")]
            if program.endswith("cli") else ["convert", str(tmp_path / "none.pth"),
                                             str(tmp_path / "out")])
    script = ("import importlib, os, signal, sys; sys.argv = {args!r};"
              "status = importlib.import_module({program!r}).main();"
              "os.kill(os.getpid(), signal.SIGINT); print('exiting', flush=True);"
              "{second}sys.exit(status)")
    once = subprocess.run([sys.executable, "-c", script.format(args=args, program=program,
                                                               second="")],
                          capture_output=True, text=True, timeout=120)
    assert once.returncode == 2 and once.stdout == "exiting\n", once.stderr[-2000:]
    assert "Traceback" not in once.stderr and "KeyboardInterrupt" not in once.stderr
    twice = subprocess.run(
        [sys.executable, "-c", script.format(args=args, program=program,
                                             second="os.kill(os.getpid(), signal.SIGINT);")],
        capture_output=True, text=True, timeout=120)
    assert twice.returncode == -signal.SIGINT, twice.stderr[-2000:]
