"""A built wheel, installed on its own, trains the smoke config: ``configs/``
stays at the top of the repository and ships inside the package."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import train_testing as tt

ROOT = Path(__file__).resolve().parent.parent


def test_a_wheel_trains_the_smoke_config_from_outside_the_repository(tmp_path):
    source = _mkdir(tmp_path / "source")  # a copy: a build writes build/ and egg-info there
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("reiqa_jax", "configs"):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w",
                          str(tmp_path / "dist"), str(source)], check=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("reiqa_jax-*.whl"))
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("reiqa_jax/configs/")}
    assert shipped == {f"reiqa_jax/configs/{p.name}" for p in (ROOT / "configs").glob("*.py")}
    site = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "--no-index", "--target", str(site),
                          str(wheel)], check=True, timeout=300)

    outside = _mkdir(tmp_path / "elsewhere")
    script = ("import sys, reiqa_jax; from reiqa_jax import cli, config_file;"
              "print('package', reiqa_jax.__file__);"
              "print('configs', config_file.available_configs());"
              "print('demo steps', config_file.load_config('demo').num_steps);"
              "sys.exit(cli.main(sys.argv[1:]))")
    env = dict(tt.env(), PYTHONPATH=str(site))
    r = subprocess.run([sys.executable, "-c", script, "train", "--config", "smoke",
                        "--workdir", str(outside / "run"),
                        *tt.overrides(num_steps=2, **{"canvas.max_classes": 1})],
                       cwd=outside, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"package {site / 'reiqa_jax' / '__init__.py'}" in r.stdout
    assert "configs ['demo', 'moco_v2_content_r50', 'reiqa_quality_r50', 'smoke']" in r.stdout
    assert "demo steps 1800" in r.stdout  # reiqa demo's config loads from the wheel too
    assert "finished 2 steps" in r.stdout and (outside / "run" / "model" / "reiqa.json").exists()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
