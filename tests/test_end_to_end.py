"""The user's path, end to end: a released-layout .pth -> `reiqa convert` -> `reiqa extract`.

The reference is the released demo's computation, in PyTorch, on the same files:
``Image.open(p).convert('RGB')``, half scale by ``resize((w//2, h//2))``,
``ToTensor`` (and ImageNet ``Normalize`` for the content encoder), the
encoder in eval mode, concat(full, half).
"""

import numpy as np
import pytest
import torch
from PIL import Image

from bad_inputs import photo
from reiqa_jax import cli
from reiqa_jax.extract import IMAGENET_MEAN, IMAGENET_STD
from torch_reference import ReIQANet, randomize, training_checkpoint

SIZE = (131, 97)  # odd width and height: the half scale floors both
# ResNet-50s at an eighth of the width: the released layout (every key of the .pth,
# bottlenecks, downsample branches), 2 x 256 features per encoder instead of 2 x 2048.
WIDTH = 0.125


def demo_features(model, path, normalize):
    image = Image.open(path).convert("RGB")
    half = image.resize((image.size[0] // 2, image.size[1] // 2))
    feats = []
    for img in (image, half):
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255.0
        if normalize:
            x = (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
        with torch.no_grad():
            feats.append(model.encoder(x[None]))
    return torch.cat(feats, dim=1)[0].numpy()


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    root = tmp_path_factory.mktemp("released")
    models = {}
    for seed, name in enumerate(("quality", "content")):
        model = randomize(ReIQANet(width=WIDTH), seed=10 + seed).eval()
        ema = randomize(ReIQANet(width=WIDTH), seed=20 + seed).eval()
        torch.save(training_checkpoint(model, ema, queue_size=64, epoch=3, seed=seed),
                   root / f"{name}_aware_r50.pth")
        models[name] = model
    images = []
    for name in ("astronaut", "chelsea"):
        path = root / f"{name}.jpg"
        photo(name, SIZE).save(path, quality=92)
        images.append(path)
    return root, models, images


def test_convert_then_extract_gives_the_released_demo_features(released, capsys):
    root, models, images = released
    for name in ("quality", "content"):
        assert cli.main(["convert", str(root / f"{name}_aware_r50.pth"), str(root / name)]) == 0
    out = root / "features.npz"
    assert cli.main(["extract", "--quality-ckpt", str(root / "quality"), "--content-ckpt",
                     str(root / "content"), "-o", str(out), "--no-progress",
                     *map(str, images)]) == 0
    result = np.load(out)
    assert list(result["paths"]) == [str(p) for p in images]
    for row, path in enumerate(images):
        for name, normalize in (("quality", False), ("content", True)):
            ref = demo_features(models[name], path, normalize)
            got = result[name][row]
            assert got.shape == ref.shape == (2 * 2048 * WIDTH,)
            assert np.abs(got - ref).max() / np.abs(ref).max() <= 1e-4, (name, path)


def test_convert_refuses_code_carrying_pickles_in_one_line(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "hook": _Carrier()}, path)
    assert cli.main(["convert", str(path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "needs arbitrary code to unpickle, refused" in err
    assert not (tmp_path / "out").exists()


class _Carrier:
    """An object whose unpickling would need this module's code."""
