"""The official ``IQAImageClass.__getitem__`` crop lines restated in PyTorch.

Our own statement of what ``datasets/dataset.py`` (lines 259-330 of the
official repository) computes after the distortions, written to keep its
memory semantics: torchvision's ``RandomCrop`` on a tensor returns a *view*
(a slice), its ``CenterCrop`` zero-pads a *copy* when the picture is smaller
than the crop, and ``crop1`` / ``crop2`` are views of the same region. The
crop swap is then run in place exactly as written there, so aliasing does
what it does in the released code. Random draws are replaced by the
geometry our implementation reports (offsets, region origins), so both
sides crop the same windows.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def centre_origin(n: int, size: int) -> int:
    """torchvision CenterCrop origin along one dim of length n, in picture
    coordinates: negative = zero padding before the picture."""
    if n < size:
        return -((size - n) // 2)
    return int(round((n - size) / 2.0))


def crop_region(t: torch.Tensor, size: int, top: int, left: int) -> torch.Tensor:
    """``crop_transform``: CenterCrop (padded copy) if the picture is smaller
    than ``size`` in a dim, else RandomCrop at (top, left) (a view)."""
    h, w = t.shape[2], t.shape[3]
    if h < size or w < size:
        pad_l = (size - w) // 2 if size > w else 0
        pad_t = (size - h) // 2 if size > h else 0
        pad_r = (size - w + 1) // 2 if size > w else 0
        pad_b = (size - h + 1) // 2 if size > h else 0
        t = F.pad(t, [pad_l, pad_r, pad_t, pad_b])
        ct = int(round((t.shape[2] - size) / 2.0))
        cl = int(round((t.shape[3] - size) / 2.0))
        return t[:, :, ct:ct + size, cl:cl + size]
    return t[:, :, top:top + size, left:left + size]


def _pair(stack, patch, y, x, top, left, lo, hi, mode):
    region = crop_region(stack, patch + max(y, x), top, left)
    c2 = region[:, :, y:y + patch, x:x + patch]
    c1 = region[:, :, :patch, :patch]
    if mode == "official":  # the released lines, on aliased views
        c1[lo:hi] = c1[lo:hi] + c2[lo:hi]
        c2[lo:hi] = c1[lo:hi] - c2[lo:hi]
        c1[lo:hi] = c1[lo:hi] - c2[lo:hi]
    elif mode == "clean":  # a true swap needs copies
        c1, c2 = c1.clone(), c2.clone()
        c1[lo:hi], c2[lo:hi] = c2[lo:hi].clone(), c1[lo:hi].clone()
    return torch.cat((c1, c2), dim=1)


def official_views(chunk1: torch.Tensor, patch: int, n_aug: int, geometry, mode: str):
    """(N, 3, H, W) float32 distorted stack -> (2N, 6, P, P), as the official.

    geometry: ((y1, x1, top1, left1), (y2, x2, top2, left2)) for scale 1 and
    scale 2, in picture coordinates (the origins are used on the RandomCrop
    path only). mode: 'official' | 'clean' | 'none'. ``chunk1`` is modified
    in place, as in the official code.
    """
    n = chunk1.shape[0]
    swap = (n_aug + 1) // 2
    (y1, x1, t1_, l1_), (y2, x2, t2_, l2_) = geometry
    t1 = _pair(chunk1, patch, y1, x1, t1_, l1_, 0, swap, mode)
    chunk3 = F.interpolate(chunk1, size=(chunk1.shape[2] // 2, chunk1.shape[3] // 2),
                           mode="bicubic", align_corners=True)
    t2 = _pair(chunk3, patch, y2, x2, t2_, l2_, swap, n, mode)
    return torch.cat((t1, t2), dim=0)
