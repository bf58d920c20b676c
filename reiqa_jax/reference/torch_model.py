"""The released Re-IQA architecture stated in plain PyTorch (our own code).

Written from the paper and the released checkpoints' layout, not copied from torchvision or the
official repo: ResNet v1.5 (stride on the bottleneck's 3x3), no fc, global
average pool; MLP head Linear(D,D) -> ReLU -> Linear(D,128) -> L2 normalise.
Parameter names match the official ``RGBSingleHead`` so its state_dict is
the released one. Also: helpers that fill a model with random weights *and*
random BatchNorm statistics, and that save a checkpoint in the released
training layout.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BLOCKS = {10: ("basic", [1, 1, 1, 1]), 18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]),
          50: ("bottleneck", [3, 4, 6, 3]), 101: ("bottleneck", [3, 4, 23, 3])}


def _conv(cin, cout, k, stride=1):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = _conv(cin, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(_conv(cin, planes, 1, stride), nn.BatchNorm2d(planes))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(y + s)


class Bottle(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes * 4
        self.conv1 = _conv(cin, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride)  # v1.5: stride here
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(y + s)


class Encoder(nn.Module):
    def __init__(self, depth=50, width=1):
        super().__init__()
        kind, counts = BLOCKS[depth]
        block = Bottle if kind == "bottleneck" else Basic
        base = int(64 * width)
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        cin = base
        for i, n in enumerate(counts):
            blocks = []
            for b in range(n):
                blocks.append(block(cin, base * 2 ** i, 2 if (i and not b) else 1))
                cin = base * 2 ** i * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.out_dim = cin

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x.mean(dim=(2, 3))


class L2Norm(nn.Module):
    def forward(self, x):
        return F.normalize(x, p=2, dim=1)


class ReIQANet(nn.Module):
    """``encoder`` + ``head`` (Sequential: Linear, ReLU, Linear, L2Norm)."""

    def __init__(self, depth=50, width=1, feat_dim=128):
        super().__init__()
        self.encoder = Encoder(depth, width)
        d = self.encoder.out_dim
        self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, feat_dim), L2Norm())

    def forward(self, x):
        return self.head(self.encoder(x))


@torch.no_grad()
def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Random weights and BN affine/running statistics (BN is not identity).

    Conv weights use He scaling so activations stay O(1) through 50 layers;
    BN running stats are random but plausible (var in [0.5, 1.5]).
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
        elif isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.copy_(0.5 + torch.rand(c, generator=g))
            m.bias.copy_(0.2 * torch.randn(c, generator=g))
            m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
            m.running_var.copy_(0.5 + torch.rand(c, generator=g))
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
        elif isinstance(m, nn.Linear):
            bound = m.in_features ** -0.5
            m.weight.copy_((torch.rand(m.weight.shape, generator=g) * 2 - 1) * bound)
            m.bias.copy_((torch.rand(m.bias.shape, generator=g) * 2 - 1) * bound)
    return model


def training_checkpoint(model: ReIQANet, model_ema: ReIQANet, *, queue_size: int,
                        epoch: int, seed: int, buffer_name: str = "mu") -> dict:
    """A dict in the released training layout.

    'model' is a DDP state_dict (``module.`` prefix); 'model_ema' has no
    prefix; 'contrast': {'memory': (K, feat_dim) unit rows}; 'optimizer' is a
    LARS-style state_dict with one random momentum buffer per parameter,
    indexed in ``model.parameters()`` order (``buffer_name`` 'mu' as the
    official LARS, 'momentum_buffer' as torch SGD); 'epoch'.
    """
    g = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    feat_dim = model.head[2].out_features
    state = {i: {buffer_name: torch.randn(p.shape, generator=g)} for i, p in enumerate(params)}
    return {
        "model": {f"module.{k}": v for k, v in model.state_dict().items()},
        "model_ema": model_ema.state_dict(),
        "contrast": {"memory": F.normalize(torch.randn(queue_size, feat_dim, generator=g), dim=1)},
        "optimizer": {"state": state, "param_groups": [
            {"lr": 0.5, "weight_decay": 1e-4, "momentum": 0.9, "trust_coefficient": 0.001,
             "params": list(range(len(params)))}]},
        "epoch": epoch,
    }
