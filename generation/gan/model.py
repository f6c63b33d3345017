"""Class-conditional WGAN-GP networks (generator + projection critic) sized from one `GanConfig`.

The layout adapts to the image size: the generator starts from a small square (7x7 for 28, 4x4 for 32/64) and
doubles it with transposed convolutions, so 28x28 grey and 64x64 RGB use the same code. The critic has no sigmoid
and no batch norm (the gradient penalty is per-sample), and conditions by projection (Miyato & Koyama 2018):
score = w.h + embed(y).h, which is cheaper and steadier than concatenating one-hot maps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

MAX_IMAGE_SIZE = 64


@dataclass(frozen=True)
class GanConfig:
    """Everything needed to rebuild the networks and resume training (stored in every checkpoint)."""

    image_size: int = 28
    channels: int = 1
    num_classes: int = 10
    z_dim: int = 64
    g_width: int = 16  # channels of the last generator stage; doubles per stage towards the start
    d_width: int = 32  # channels of the first critic stage; doubles per stage
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    n_critic: int = 5
    gp_lambda: float = 10.0
    batch_size: int = 64
    ema_decay: float = 0.99  # per generator step; ~12 steps an epoch on 4,000 images, so ~8 epochs of memory

    def __post_init__(self) -> None:
        if not 4 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size must be 4..{MAX_IMAGE_SIZE}, got {self.image_size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if self.num_classes < 1:
            raise ValueError("need at least one class")

    @property
    def base_size(self) -> int:
        return plan_stages(self.image_size)[0]

    @property
    def stages(self) -> int:
        return plan_stages(self.image_size)[1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GanConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def plan_stages(size: int) -> tuple[int, int]:
    """(start size, number of x2 stages): halve while even and above 7 (28->7 in 2, 64->4 in 4, 8->4 in 1)."""
    base, stages = size, 0
    while base % 2 == 0 and base > 7:
        base //= 2
        stages += 1
    return base, stages


class Generator(nn.Module):
    """z + class embedding -> linear -> (ConvT x2, BN, ReLU)* -> 3x3 conv -> tanh, output in [-1, 1]."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.stages
        width = cfg.g_width * 2**k
        self.start = (width, cfg.base_size)
        self.embed = nn.Embedding(cfg.num_classes, cfg.z_dim)
        self.fc = nn.Sequential(
            nn.Linear(2 * cfg.z_dim, width * cfg.base_size**2),
            nn.BatchNorm1d(width * cfg.base_size**2),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        for _ in range(k):
            blocks += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        blocks += [nn.Conv2d(width, cfg.channels, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.embed(y)], dim=1))
        width, size = self.start
        return self.body(h.view(-1, width, size, size))


class Critic(nn.Module):
    """(Conv 4x4 stride 2, LeakyReLU)* -> features h; score = linear(h) + <embed(y), h> (projection), no sigmoid."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, width = cfg.channels, cfg.d_width
        for _ in range(cfg.stages):
            layers += [nn.Conv2d(c_in, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            c_in, width = width, width * 2
        layers.append(nn.Flatten())
        self.body = nn.Sequential(*layers)
        feat = c_in * cfg.base_size**2
        self.out = nn.Linear(feat, 1)
        self.embed = nn.Embedding(cfg.num_classes, feat)
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.out(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gulrajani et al. 2017: E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates of real and fake."""
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(mixed, y)
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
