"""The content-aware encoder: PyContrast's MoCo-v2 with its default settings.

The Re-IQA authors "utilized the vanilla MoCo-v2 training code using
ResNet-50 architecture and ImageNet database provided in the PyContrast
repository [...] using the default settings" (avinabsaha/ReIQA README.MD,
line 48). PyContrast (github HobbitLong/PyContrast, pycontrast/):

* ``options/base_options.py`` 17: ``--method MoCov2`` sets RGB, no jigsaw,
  the MoCo memory, augmentation "B", the MLP head and T = 0.2 (what
  ``override_options``, 129-138, applies); 78 and 84: 65,536 keys, EMA 0.999;
  36: batch 256; 42-55: 200 epochs, lr 0.03, ``--lr_decay_epochs
  '120,160'``, ``--lr_decay_rate 0.1``, weight decay 1e-4, momentum 0.9, and
  ``--cosine`` a flag that is off unless given.
* ``main_contrast.py`` 50-53: ``torch.optim.SGD(lr, momentum,
  weight_decay)``; 69: ``adjust_learning_rate`` at the start of every epoch.
* ``learning/base_trainer.py`` 66-76: without ``--cosine`` the rate is
  ``lr * lr_decay_rate ** #{d in lr_decay_epochs: epoch > d}``: 0.03 for
  epochs 1-120, 0.003 for 121-160, 0.0003 for 161-200 (``lr_schedule =
  'step'``, ``reiqa_jax.optim.step_schedule``); 81-89: the warmup, which
  ``options/train_options.py`` 43-51 turns on only for batches above 256, so
  none here.

A choice to know about: ``docs/RUN.md`` 11-17 shows a CMC command *with*
``--cosine`` and says other methods (MoCov2 among them) may replace CMC.
That run is ``--config.lr_schedule=official`` (PyContrast's per-epoch cosine
down to 0.03 * 0.1**3; ``base_trainer.py`` 69-72). We follow the defaults,
as the authors wrote.

ResNet-50 + MLP head (128-d), augmentation "B" (``reiqa_jax/augment/content.py``:
224 x 224 RandomResizedCrop 0.2-1, flip, colour jitter 0.8, greyscale 0.2,
blur 0.5). Shuffle BN within each host (MoCo's 8-GPU machine).

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
    c.lr_schedule = "step"         # PyContrast without --cosine (its default)
    c.lr_decay_epochs = (120, 160)
    c.lr_decay_rate = 0.1
    c.warmup_epochs = 0            # PyContrast warms up only batches > 256
    c.crop_swap = "none"           # quality branch only
    c.views.patch_size = 224       # the crops' side; the other views keys are unused
    c.tile_hw = (512, 512)         # canvas the random resized crop is drawn on
    c.log_every_steps = 50
    c.checkpoint_every_steps = 2000
    return c
