"""RegNet stage (timm ``RegStage`` with its ``Bottleneck``), rebuilt with timm's parameter names.

HumanOmni's visual projector uses ``RegStage(depth=2, stride=1, dilation=1, act_layer=SiLU,
norm_layer=LayerNorm2d)`` with timm's Bottleneck defaults (bottle_ratio 1, group_size 1 so conv2 is depthwise,
se_ratio 0.25 of the block's *input* channels, a 1x1 conv shortcut when channels change). timm itself imports
torchvision, which does not install beside the CPU torch used here, so the block is written out again; the
attribute names (``b1.conv1.conv``, ``b1.conv1.bn``, ``b1.se.fc1`` ...) are timm's, so published weights load.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LayerNormAct2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map, then an optional activation (timm's norm-act layer; eps 1e-5)."""

    def __init__(self, channels: int, act: type[nn.Module] | None = None):
        super().__init__(channels, eps=1e-5)
        self.act = act() if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return self.act(x.permute(0, 3, 1, 2))


class ConvNormAct(nn.Module):
    """Conv2d (no bias, 'same' padding for odd kernels) -> LayerNorm2d -> activation: names ``conv`` and ``bn``."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.SiLU):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, groups=groups, bias=False)
        self.bn = LayerNormAct2d(out_chs, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SqueezeExcite(nn.Module):
    """Channel gate from the spatial mean: 1x1 conv down, SiLU, 1x1 conv up, sigmoid (names ``fc1``/``fc2``)."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = nn.SiLU()
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


class Bottleneck(nn.Module):
    """1x1 conv, 3x3 depthwise conv, squeeze-excite, 1x1 conv (no act), plus the shortcut, then SiLU."""

    def __init__(self, in_chs: int, out_chs: int, se_ratio: float = 0.25):
        super().__init__()
        self.conv1 = ConvNormAct(in_chs, out_chs, 1)
        self.conv2 = ConvNormAct(out_chs, out_chs, 3, groups=out_chs)
        self.se = SqueezeExcite(out_chs, int(round(in_chs * se_ratio)))
        self.conv3 = ConvNormAct(out_chs, out_chs, 1, act=None)
        self.downsample = ConvNormAct(in_chs, out_chs, 1, act=None) if in_chs != out_chs else nn.Identity()
        self.act3 = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.se(self.conv2(self.conv1(x))))
        return self.act3(y + self.downsample(x))


class RegStage(nn.Module):
    """``depth`` bottleneck blocks named ``b1``, ``b2`` ...; the first changes the channel count."""

    def __init__(self, depth: int, in_chs: int, out_chs: int):
        super().__init__()
        for i in range(depth):
            self.add_module(f"b{i + 1}", Bottleneck(in_chs if i == 0 else out_chs, out_chs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x
