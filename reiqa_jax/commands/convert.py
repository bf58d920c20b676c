"""``reiqa convert``: PyTorch checkpoints to ours and back.

It keeps its own argument parser (``reiqa_jax.convert.main``, also behind
``tools/convert_torch_ckpt.py``); ``reiqa convert ARGS`` hands ARGS over.
"""
HELP = "convert PyTorch checkpoints to ours and back (see `reiqa convert --help`)"
OWN_PARSER = True


def main(argv) -> int:
    from reiqa_jax.convert import main as convert_main

    return convert_main(argv, prog="reiqa convert")
