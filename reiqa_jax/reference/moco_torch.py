"""The official Re-IQA MoCo-v2 step restated in plain PyTorch (our own code).

Restates what ``learning/contrast_trainer.py::_train_moco`` (with
``_shuffle_bn``), ``memory/mem_moco.py::RGBMoCo`` and ``moco/optimizer.py``
compute for one iteration on one node of G GPUs, simulated in one process:

* every GPU holds a copy of the online model and of the momentum model; the
  parameters are the same, the BatchNorm buffers are per copy (``buffers``);
* shuffle BN: the node's key crops are gathered, permuted by ``perm`` (the
  permutation rank 0 draws), GPU g encodes rows ``perm[g*b:(g+1)*b]`` with
  its momentum model (BN in train mode), the keys of all GPUs are gathered
  in that shuffled order (what enters the queue) and un-shuffled with
  ``argsort(perm)`` for the positives;
* the online model encodes GPU g's query crops; logits ``[q.k+, q.queue]/T``
  against a copy of the queue taken before the push; cross-entropy with label
  0 per GPU; DDP averages the gradients over GPUs (here: each GPU's loss / G
  is back-propagated into the shared parameters);
* LARS step, then the EMA ``p_ema = m p_ema + (1 - m) p`` over parameters;
* the gathered keys are written at the pointer with ``fmod`` wrap-around.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F


@torch.no_grad()
def lars_step(params, grads, mus, *, lr, weight_decay=1e-4, momentum=0.9, trust=1e-3):
    """The official LARS update, in place (``moco/optimizer.py``)."""
    for p, g, mu in zip(params, grads, mus):
        dp = g
        if p.ndim > 1:
            dp = dp.add(p, alpha=weight_decay)
            pn, un = torch.norm(p), torch.norm(dp)
            one = torch.ones_like(pn)
            q = torch.where(pn > 0.0, torch.where(un > 0, trust * pn / un, one), one)
            dp = dp.mul(q)
        mu.mul_(momentum).add_(dp)
        p.add_(mu, alpha=-lr)


def _buffers(model):
    return [b.clone() for b in model.buffers()]


@torch.no_grad()
def _load_buffers(model, values):
    for b, v in zip(model.buffers(), values):
        b.copy_(v)


def official_step(model, model_ema, queue, pointer, x1, x2, perm, mus, *, lr,
                  temperature=0.2, alpha=0.999, weight_decay=1e-4, momentum=0.9):
    """One official iteration on a node of G = len(x1) GPUs.

    Args:
      model, model_ema: ReIQANet (reiqa_jax/reference/torch_model.py); updated in place.
        Their BatchNorm buffers are GPU 0's; GPU g's copies start equal.
      queue: (K, D) memory, updated in place; pointer: int.
      x1, x2: lists of G (b, 3, P, P) query / key crops.
      perm: (G*b,) int64 shuffle permutation of the node's key rows.
      mus: LARS momentum buffers, ``model.parameters()`` order, in place.
    Returns dict: logits (G*b, 1+K) (GPU-major), losses (G,), accs (G,)
      percent, buffers / ema_buffers (lists, per GPU, of the BN buffers after
      the step), pointer.
    """
    G, b = len(x1), x1[0].shape[0]
    online_bufs = [_buffers(model) for _ in range(G)]
    ema_bufs = [_buffers(model_ema) for _ in range(G)]
    model.train()
    model_ema.eval()
    for m in model_ema.modules():  # the official set_bn_train
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train()

    # keys: shuffle BN over the node
    node_x = torch.cat(x2, dim=0)
    reverse = torch.argsort(perm)
    keys = []
    with torch.no_grad():
        for g in range(G):
            _load_buffers(model_ema, ema_bufs[g])
            keys.append(model_ema(node_x[perm[g * b:(g + 1) * b]]))
            ema_bufs[g] = _buffers(model_ema)
    all_k = torch.cat(keys, dim=0)

    # queries, logits, loss; DDP-averaged gradients
    snapshot = queue.clone()
    logits, losses, accs = [], [], []
    model.zero_grad()
    for g in range(G):
        _load_buffers(model, online_bufs[g])
        q = model(x1[g])
        online_bufs[g] = _buffers(model)
        k = all_k[reverse[g * b:(g + 1) * b]].detach()
        pos = torch.bmm(q.view(b, 1, -1), k.view(b, -1, 1)).view(b, 1)
        neg = torch.mm(snapshot, q.t()).t()
        out = torch.cat((pos, neg), dim=1) / temperature
        loss = F.cross_entropy(out, torch.zeros(b, dtype=torch.long))
        (loss / G).backward()
        logits.append(out.detach())
        losses.append(float(loss.detach()))
        accs.append(float((out.argmax(dim=1) == 0).float().mean() * 100))

    params = list(model.parameters())
    lars_step(params, [p.grad for p in params], mus, lr=lr, weight_decay=weight_decay,
              momentum=momentum)
    with torch.no_grad():  # momentum update, parameters only
        for p, pe in zip(model.parameters(), model_ema.parameters()):
            pe.mul_(alpha).add_(p.detach(), alpha=1 - alpha)
        ids = torch.fmod(torch.arange(all_k.shape[0]) + pointer, queue.shape[0]).long()
        queue.index_copy_(0, ids, all_k)
    return dict(logits=torch.cat(logits), losses=losses, accs=accs, buffers=online_bufs,
                ema_buffers=ema_bufs, pointer=(pointer + all_k.shape[0]) % queue.shape[0])


def clone(model):
    return copy.deepcopy(model)
