#!/usr/bin/env python
"""Convert Re-IQA checkpoints between PyTorch (.pth) and reiqa-jax (orbax dir).

Usage: convert_torch_ckpt.py SRC OUT [--ema] [--to-torch]  (the same as: reiqa convert)
See reiqa_jax/convert.py for the accepted layouts.
"""
import sys

from reiqa_jax.commands.convert import main

if __name__ == "__main__":
    sys.exit(main())
