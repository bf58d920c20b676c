"""The official Re-IQA quality-aware encoder recipe (avinabsaha/ReIQA README):

  main_contrast.py --method MoCov2 --cosine --head mlp --optimizer LARS
    --batch_size 630 --learning_rate 12 --n_aug 11 --epochs 40 --n_scale 2
    --n_distortions 1 --patch_size 160 --warm --swap_crops 1   (6 nodes)

ResNet-50 + MLP head (128-d), MoCo-v2 memory of 65,536 keys, T = 0.2, EMA
0.999; LARS (trust 1e-3, momentum 0.9, wd 1e-4) at 12 with 5 warmup epochs
from 0.01 and the per-epoch cosine; 630 images per step (int(630 / devices)
per device), each giving 2 scales x (11 distorted + pristine) crop pairs of
160 x 160. Shuffle BN within each host, the official aliased crop swap.
Whole pictures, as the official loader takes them: distorted at their own
size, scale 2 from the whole distorted stack, crops drawn over the picture.

Our choices (the rest is the official recipe): ``dtype='auto'`` computes in
bfloat16 on GPU/TPU (speed; the official trains in float32:
``--config.dtype=float32`` is the faithful run); ``canvas``: jit compiles
one program per shape, so a step takes pictures of one canvas class
(``reiqa_jax/data/canvases.py``: at most 8 shapes; pictures above 1024 px a
side are cut to a random window); an epoch is then sum over classes of
ceil(n / batch) steps.

  reiqa train --config configs/reiqa_quality_r50.py --workdir runs/quality \
      --config.data=moco_train.csv
"""
import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    # A CSV with column Image_path (relative paths: against the CSV's folder)
    # or a folder of images (searched recursively).
    c.data = ""
    c.branch = "quality"          # 'quality' (Re-IQA views) or 'content' (MoCo-v2 "B")
    c.model = ml_collections.ConfigDict(dict(depth=50, width=1.0, feat_dim=128))
    c.init_from = ""              # a `reiqa convert` output to start from

    c.num_epochs = 40
    c.num_steps = 0               # > 0 overrides the length in epochs
    c.batch_size = 630            # global images per step

    c.optimizer = "lars"
    c.learning_rate = 12.0
    c.momentum = 0.9
    c.weight_decay = 1e-4
    c.trust_coefficient = 1e-3
    c.lr_schedule = "official"    # per-iteration warmup, then per-epoch cosine
    c.warmup_epochs = 5
    c.warmup_from = 0.01
    c.lr_decay_rate = 0.1         # cosine floor = learning_rate * lr_decay_rate**3
    c.lr_decay_epochs = (120, 160)  # PyContrast's milestones (lr_schedule='step' only)

    c.queue_size = 65536
    c.temperature = 0.2
    c.negatives = "queue"         # 'queue' (official), 'queue+batch' (the batch's other keys
    #                               too), 'queue+pristine' (+ the picture's own pristine key),
    #                               'queue+siblings' (+ its other versions at the same scale)
    c.ema_momentum = 0.999
    c.shuffle_bn = "host"         # 'host' (official), 'global', 'none', 'sync'
    c.crop_swap = "official"      # 'official' (aliased arithmetic), 'clean', 'none'
    c.views = ml_collections.ConfigDict(dict(
        patch_size=160, n_aug=11, n_scale=2, n_distortions=1,
        schedule="independent",   # official per-picture shuffle of the 26 kinds
        ops="official"))          # distortion set (reiqa_jax/augment/op_sets.py): 'official', 'stand_in', 'only:KIND,...'
    # Whole pictures, as the official loader (reiqa_jax/data/canvases.py): each
    # picture at its own size in a canvas of its class; one compiled step per
    # canvas. Pictures with a side above max_side are cut to a random window.
    c.canvas = ml_collections.ConfigDict(dict(
        step=32,                  # canvas sides are multiples of this
        max_side=1024,            # the largest canvas side
        min_class=0,              # fewest pictures per canvas (0 = the global batch)
        max_classes=8))           # most canvases (compiled steps)
    c.tile_hw = (384, 512)        # content branch only: the canvas pictures are shrunk to fit
    c.dtype = "auto"              # bfloat16 compute on GPU/TPU, float32 on CPU

    c.log_every_steps = 10        # the official print_freq
    c.checkpoint_every_steps = 500
    c.keep_checkpoints = 3
    c.input = ml_collections.ConfigDict(dict(
        workers=8,                # grain decoding processes per host (0 = threads only)
        threads=8, prefetch=2, max_pixels=0))
    return c
