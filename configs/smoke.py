"""A small run that trains on a 2-core CPU in about a minute, with no download.

The official quality recipe scaled down: ResNet-18 at a quarter width,
photos bundled with scikit-image (``data='skimage'``: written once to
the cache folder, see reiqa_jax.data.sources), 4 images per step, 5 distorted versions + pristine at 2
scales (12 crop pairs of 64 x 64 per image) from 256 x 256 windows, a queue of
1,024 keys, LARS at the official rate 12 with a one-epoch warmup, and an EMA
of 0.99 (0.999 lets the key encoder move too little in a run this short).
The trainer's first look at a new machine; the tests shrink it further
(``reiqa demo`` trains ``configs/demo.py``).

  reiqa train --config configs/smoke.py --workdir runs/smoke
"""
import reiqa_quality_r50


def get_config():
    c = reiqa_quality_r50.get_config()
    c.data = "skimage"
    c.model.depth = 18
    c.model.width = 0.25
    c.num_epochs = 3
    c.batch_size = 4
    c.warmup_epochs = 1
    c.ema_momentum = 0.99         # a short run: the key encoder must follow within ~100 steps
    c.queue_size = 1024
    c.views.patch_size = 64
    c.views.n_aug = 5
    c.canvas.max_side = 256       # 256 x 256 windows of the photos (speed; the recipe takes them whole)
    c.log_every_steps = 2
    c.checkpoint_every_steps = 4
    c.keep_checkpoints = 2
    c.input.workers = 0
    c.input.threads = 2
    return c
