"""Where the training step's time goes on this machine: ResNet forward (eval and
train mode) and forward + backward, ours (XLA) against PyTorch, one process.

    .venv/bin/python benchmarks/resnet_fwd_bwd.py                # ResNet-50, 24 x 160x160
    XLA_FLAGS=--xla_cpu_experimental_onednn_custom_call=true .venv/bin/python benchmarks/resnet_fwd_bwd.py

Prints seconds per call (best of --repeats, after one warm-up) for each side
and their ratio. The loss is the sum of one output column; BatchNorm in train
mode updates its statistics, as in the training step.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time  # noqa: E402


def ours(depth, x, repeats):
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from reiqa_jax.models import ReIQAModel

    model = ReIQAModel(depth, 1, 128, rngs=nnx.Rngs(0))
    model.train()
    graph, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    params, stats = nnx.to_pure_dict(params), nnx.to_pure_dict(stats)
    x = jnp.asarray(x.transpose(0, 2, 3, 1))

    def forward(p, s, x):
        m = nnx.merge(graph, p, s)
        return m(x), nnx.to_pure_dict(nnx.state(m, nnx.BatchStat))

    train_fwd = jax.jit(forward)
    grad = jax.jit(jax.grad(lambda p, s, x: jnp.sum(forward(p, s, x)[0][:, 0])))
    model.eval()
    eval_graph, _, _ = nnx.split(model, nnx.Param, nnx.BatchStat)
    eval_fwd = jax.jit(lambda p, s, x: nnx.merge(eval_graph, p, s)(x))
    run = lambda f: (lambda: jax.block_until_ready(f(params, stats, x)))
    return {"eval forward": best_time(run(eval_fwd), repeats),
            "train forward": best_time(run(train_fwd), repeats),
            "forward + backward": best_time(run(grad), repeats)}


def torch_side(depth, x, repeats):
    import torch

    from reiqa_jax.reference.torch_model import ReIQANet

    model = ReIQANet(depth, 1, 128)
    x = torch.from_numpy(x)

    def grad():
        model.zero_grad()
        model(x)[:, 0].sum().backward()

    model.eval()
    with torch.no_grad():
        eval_t = best_time(lambda: model(x), repeats)
    model.train()
    with torch.no_grad():
        train_t = best_time(lambda: model(x), repeats)
    return {"eval forward": eval_t, "train forward": train_t,
            "forward + backward": best_time(grad, repeats), "threads": torch.get_num_threads()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    x = np.random.default_rng(0).uniform(0, 1, (args.batch, 3, args.size, args.size))
    x = x.astype(np.float32)
    a, b = ours(args.depth, x, args.repeats), torch_side(args.depth, x, args.repeats)
    print(f"ResNet-{args.depth}, {args.batch} x {args.size}x{args.size}, float32, best of "
          f"{args.repeats} (PyTorch: {b['threads']} threads)")
    print("| pass | reiqa-jax (s) | PyTorch (s) | PyTorch / ours |")
    print("|---|---:|---:|---:|")
    for name in ("eval forward", "train forward", "forward + backward"):
        print(f"| {name} | {a[name]:.2f} | {b[name]:.2f} | {b[name] / a[name]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
