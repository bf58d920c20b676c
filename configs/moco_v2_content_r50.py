"""The content-aware encoder: MoCo-v2 with its ImageNet defaults.

ResNet-50 + MLP head (128-d), 65,536 keys, T = 0.2, EMA 0.999, SGD
(lr 0.03, momentum 0.9, wd 1e-4), batch 256, 200 epochs, cosine (per step,
to 0), augmentation "B" (``reiqa_jax/augment/content.py``: 224 x 224
RandomResizedCrop 0.2-1, flip, colour jitter 0.8, greyscale 0.2, blur 0.5).
Shuffle BN within each host (MoCo's 8-GPU machine).

  reiqa train --config configs/moco_v2_content_r50.py --workdir runs/content \
      --config.data=/data/imagenet/train
"""
import reiqa_quality_r50  # configs import their siblings by name


def get_config():
    c = reiqa_quality_r50.get_config()
    c.branch = "content"
    c.num_epochs = 200
    c.batch_size = 256
    c.optimizer = "sgd"
    c.learning_rate = 0.03
    c.lr_schedule = "cosine"
    c.warmup_epochs = 0
    c.lr_decay_rate = 0.0          # cosine to 0, as MoCo-v2
    c.crop_swap = "none"           # quality branch only
    c.views.patch_size = 224       # the crops' side; the other views keys are unused
    c.tile_hw = (512, 512)         # canvas the random resized crop is drawn on
    c.log_every_steps = 50
    c.checkpoint_every_steps = 2000
    return c
