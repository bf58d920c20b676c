"""Shared by the tests of the features -> scores wing: data with a known linear signal."""

import numpy as np


def linear_data(n=240, d=48, n_groups=24, seed=0, noise=0.3):
    """Features with a known linear signal, grouped like a synthetic IQA set."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32) * rng.uniform(0.5, 3, d).astype(np.float32)
    w = np.zeros(d)
    w[:8] = rng.normal(size=8)
    y = 50 + 10 * (x @ w) / np.std(x @ w) + noise * 10 * rng.normal(size=n)
    groups = np.repeat([f"ref{i:02d}" for i in range(n_groups)], n // n_groups)
    return x, y, groups


def write_npz(path, x_content, x_quality, entries, ckpts=("", "")):
    """A features .npz with the keys `reiqa extract` writes."""
    np.savez(path, paths=np.array(entries), entries=np.array(entries),
             content=x_content.astype(np.float32), quality=x_quality.astype(np.float32),
             failed=np.array([], str), failed_entries=np.array([], str),
             errors=np.array([], str), quality_ckpt=np.array(ckpts[0]),
             content_ckpt=np.array(ckpts[1]))
