"""configs/demo.py: its values are the ones its docstring documents, and every
difference from the official recipe is documented."""
import ast

import pytest

from reiqa_jax.config_file import find_config, load_config
from reiqa_jax.data.sources import count_images
from reiqa_jax.demo import photos


def _table(doc: str) -> dict[str, tuple[str, str]]:
    """{key: (demo cell, official cell)} of the docstring's table."""
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("key", "---"):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def _leaves(config, prefix=""):
    out = {}
    for key, value in config.items():
        if hasattr(value, "items"):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _same(documented, value) -> bool:
    """Equal, floats to the 3 significant digits a table shows."""
    if isinstance(value, float):
        return documented == pytest.approx(value, rel=1e-3)
    return documented == value


@pytest.fixture(scope="module")
def configs():
    demo, official = load_config("demo"), load_config("reiqa_quality_r50")
    doc = ast.get_docstring(ast.parse(find_config("demo").read_text()))
    return _leaves(demo), _leaves(official), _table(doc)


def test_documented_values_are_the_configs(configs):
    demo, official, table = configs
    assert len(table) >= 12
    for key, (demo_cell, official_cell) in table.items():
        if key == "data":
            continue   # described in words; checked below
        assert _same(ast.literal_eval(demo_cell), demo[key]), key
        assert _same(ast.literal_eval(official_cell), official[key]), key


def test_every_difference_from_the_official_recipe_is_documented(configs):
    demo, official, table = configs
    differ = {k for k in demo if demo[k] != official.get(k)}
    assert differ - {"log_every_steps"} <= set(table), differ - set(table)


def test_the_demo_trains_on_no_test_photo_and_sees_each_picture_often():
    config = load_config("demo")
    parts = config.data.split("+")
    assert parts[0].startswith("synthetic:100:256x192*")
    names = parts[1].split(":", 1)[1].split("*")[0].split(",")
    assert not set(names) & set(photos.TEST) and not set(names) & set(photos.VALIDATION)
    # one epoch covers the run: no epoch-end checkpoint before the end
    assert count_images(config.data) >= config.num_steps * config.batch_size
    # warmup: 10 % of the steps
    steps_per_epoch = -(-count_images(config.data) // config.batch_size)
    assert config.warmup_epochs * steps_per_epoch == pytest.approx(0.1 * config.num_steps)
    assert config.queue_size == 5 * config.batch_size * 2 * (config.views.n_aug + 1)
