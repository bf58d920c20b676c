"""The official quality recipe scaled down to a 2-core CPU: what ``reiqa demo`` trains.

Every value that differs from the official recipe (``reiqa_quality_r50.py``),
with the reason. The values were chosen by measurement on validation photos
that the demo never reports (``benchmarks/demo_sweep.py``; its table is in
``benchmarks/RESULTS.md``), never on the demo's test photos.

| key | demo | official | why |
|---|---|---|---|
| data | 100 dead leaves (256 x 192) + 11 bundled non-photo pictures, both x130 | '' (KADIS-700k pristines) | no download; of the data mixes tried, this one scored best on the validation photos (RESULTS.md, demo_sweep); the everyday photos are the demo's test set, so none is trained on; x130 makes one epoch the whole run |
| model.depth | 10 | 50 | ResNet-10 (one basic block per stage) keeps the layout (4 stages, BatchNorm, global pool) at a small part of a ResNet-50's work; on the validation photos, 1,800 of its steps gave a larger mean margin over random init than ResNet-18's 600 and 1,200 (RESULTS.md, demo_sweep_canvas and demo_sweep_r10) |
| model.width | 0.25 | 1.0 | channels 16-128: what trains 1,800 steps in ~9 minutes; width 0.5 costs 2.8x per step and did no better in the same minutes (measured on ResNet-18) |
| batch_size | 8 | 630 | 96 crop pairs per step, ~0.3 s on 2 cores |
| num_steps | 1800 | 0 | the official runs 40 epochs of KADIS-700k (~8,900 steps of 630) |
| learning_rate | 1.2 | 12.0 | LARS sets each layer's step relative to its weights, so the official 12 at 8 images is a random walk (measured: no learning); the authors' rule 0.6 x 2 scales x batch / 64 gives 0.15; of 0.3-2.4 the sweep found 1.2 best for ResNet-18 at 600 steps, and 2.4 no better for ResNet-10 at 1,200 |
| lr_schedule | 'cosine' | 'official' | the official cosine steps once per epoch; a run of about one epoch needs it per step |
| warmup_epochs | 0.0998 | 5 | 10 % of the steps: 180 of the 1,804-step epoch (the official warms up 5 of 40 epochs, 12.5 %) |
| warmup_from | 0.0 | 0.01 | from zero, as a per-step warmup does |
| queue_size | 480 | 65536 | 5 steps of keys (8 x 12 pairs each): the official queue holds 65,536 / (630 x 24) = 4.3 steps |
| ema_momentum | 0.99 | 0.999 | the key encoder must follow within ~100 steps, not ~1,000 |
| views.patch_size | 64 | 160 | crops 64 x 64 from 192 x 256 pictures: roughly the crop-to-picture ratio of 160 from 512 x 384 |
| views.n_aug | 5 | 11 | pristine + 5 distorted versions x 2 scales = 12 crop pairs per picture |
| canvas.max_side | 256 | 1024 | the dead leaves are drawn at 256 x 192; the bundled pictures (shorter side 384) are cut to random 256-pixel windows |
| canvas.max_classes | 1 | 8 | every picture in one 256 x 256 canvas: one compiled step (each compilation costs ~1 min here) |
| checkpoint_every_steps | 450 | 500 | a checkpoint at 25, 50, 75 and 100 % of the run: the demo's learning curve exports them |
| keep_checkpoints | 8 | 3 | all of them kept |
| input.workers | 0 | 8 | 2 cores: decoding in threads beside the step, no worker processes |
| input.threads | 2 | 8 | as many as cores |

Everything else is official: LARS (momentum 0.9, weight decay 1e-4, trust
1e-3), InfoNCE at T = 0.2, 128-d MLP head, shuffle BN, the official crop
swap, the 26 distortions with 1 per version, two scales.

  reiqa train --config configs/demo.py --workdir runs/demo
"""
import ml_collections

import reiqa_quality_r50

# Bundled scikit-image pictures that are not everyday photographs (the demo's
# test photos are all the everyday ones, so none of those is trained on).
PICTURES = ("hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "gravel",
            "moon", "clock", "cell", "page", "text")
DEAD_LEAVES = 100
STEPS = 1800
BATCH = 8
WARMUP_FRACTION = 0.1


def get_config():
    base = reiqa_quality_r50.get_config().to_dict()
    # Both lists are repeated so that one epoch covers the whole run (111
    # pictures would otherwise make an epoch, and a checkpoint, every 14 steps).
    repeat = -(-STEPS * BATCH // (DEAD_LEAVES + len(PICTURES)))
    steps_per_epoch = -(-repeat * (DEAD_LEAVES + len(PICTURES)) // BATCH)
    base["warmup_epochs"] = WARMUP_FRACTION * STEPS / steps_per_epoch  # a float here
    c = ml_collections.ConfigDict(base)
    c.data = (f"synthetic:{DEAD_LEAVES}:256x192*{repeat}"
              f"+skimage:{','.join(PICTURES)}*{repeat}")
    c.model.depth = 10
    c.model.width = 0.25
    c.num_steps = STEPS
    c.batch_size = BATCH
    c.learning_rate = 1.2
    c.lr_schedule = "cosine"
    c.warmup_from = 0.0
    c.queue_size = 5 * BATCH * 12
    c.ema_momentum = 0.99
    c.views.patch_size = 64
    c.views.n_aug = 5
    c.canvas.max_side = 256
    c.canvas.max_classes = 1
    c.log_every_steps = 10
    c.checkpoint_every_steps = STEPS // 4
    c.keep_checkpoints = 8
    c.input.workers = 0
    c.input.threads = 2
    return c
