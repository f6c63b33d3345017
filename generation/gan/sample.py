"""Sampling from a trained generator: what the service's image endpoint and `taskwright gan sample` call.

`GanSampler.load` validates the file (CheckpointError otherwise), rebuilds the generator from the stored config,
and folds each batch norm into the layer before it, which removes a third of the CPU time per image and changes
nothing else. Seeds make samples reproducible: the same (label, n, seed) gives the same images on one machine.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

from generation.gan.checkpoint import SHIPPED, load_checkpoint
from generation.gan.errors import CheckpointError, UnknownLabel
from generation.gan.model import GanConfig, Generator
from generation.gan.train import pick_device

log = logging.getLogger(__name__)

MAX_N = 1024


class GanSampler:
    """A loaded generator plus its class names; thread-safe (one forward pass at a time per sampler)."""

    def __init__(self, generator: Generator, cfg: GanConfig, class_names: list[str], device: str,
                 path: Path | None = None) -> None:
        self.generator = generator.eval()
        self.cfg = cfg
        self.class_names = list(class_names)
        self.image_size = cfg.image_size
        self.channels = cfg.channels
        self.device = device
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "auto") -> GanSampler:
        """Load a generator or training checkpoint; None = the shipped MNIST-5k checkpoint."""
        path = Path(path) if path is not None else SHIPPED
        dev = pick_device(device)
        ckpt = load_checkpoint(path)
        cfg: GanConfig = ckpt["config"]
        gen = Generator(cfg)
        try:
            gen.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["generator"].items()})
        except (RuntimeError, AttributeError) as e:
            raise CheckpointError(f"checkpoint {path}: generator weights do not match its config ({e})") from None
        gen = fold_batchnorm(gen.eval()).to(dev)
        log.info("loaded GAN %s (%d classes, %dx%dx%d, epoch %s) on %s", path, cfg.num_classes, cfg.image_size,
                 cfg.image_size, cfg.channels, ckpt.get("epoch"), dev)
        return cls(gen, cfg, ckpt["class_names"], dev, path)

    def class_index(self, label: str | int) -> int:
        """A class name ("7", "cat") or an index; anything else raises UnknownLabel listing the classes."""
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            if 0 <= int(label) < len(self.class_names):
                return int(label)
            raise UnknownLabel(label, self.class_names)
        if isinstance(label, str):
            key = label.strip()
            if key in self.class_names:
                return self.class_names.index(key)
            lowered = [c.lower() for c in self.class_names]
            if key.lower() in lowered:
                return lowered.index(key.lower())
        raise UnknownLabel(label, self.class_names)

    def sample(self, label: str | int, n: int, seed: int | None = None) -> np.ndarray:
        """n images of one class as uint8 (n, H, W, C)."""
        return self.sample_many([(self.class_index(label), n, seed)])[0]

    def sample_many(self, requests: list[tuple[int, int, int | None]]) -> list[np.ndarray]:
        """Several (class_index, n, seed) requests in ONE forward pass; each request's noise comes from its own
        seed, so a request's images do not depend on what it was batched with."""
        if not requests:
            return []
        zs, ys = [], []
        for cls_idx, n, seed in requests:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= int(n) <= MAX_N:
                raise ValueError(f"n must be an integer from 1 to {MAX_N}, got {n!r}")
            cls_idx = self.class_index(int(cls_idx) if isinstance(cls_idx, (int, np.integer)) else cls_idx)
            gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
            zs.append(torch.randn(int(n), self.cfg.z_dim, generator=gen))
            ys.append(torch.full((int(n),), cls_idx, dtype=torch.long))
        z, y = torch.cat(zs).to(self.device), torch.cat(ys).to(self.device)
        with self._lock, torch.inference_mode():
            x = self.generator(z, y)
        out = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        result, start = [], 0
        for _, n, _ in requests:
            result.append(out[start:start + int(n)])
            start += int(n)
        return result


def fold_batchnorm(gen: Generator) -> Generator:
    """Fold eval-mode BN into the preceding Linear / ConvTranspose2d (exact up to float rounding)."""
    def fold(layer: nn.Module, bn: nn.Module, out_dim: int) -> nn.Module:
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        with torch.no_grad():
            w = layer.weight
            shape = [1] * w.dim()
            shape[out_dim] = -1
            layer.weight.copy_(w * scale.view(shape))
            bias = layer.bias if layer.bias is not None else torch.zeros_like(shift)
            layer.bias = nn.Parameter(bias * scale + shift)
        return layer

    def rebuild(seq: nn.Sequential) -> nn.Sequential:
        mods, out = list(seq), []
        i = 0
        while i < len(mods):
            m = mods[i]
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            if isinstance(m, nn.Linear) and isinstance(nxt, nn.BatchNorm1d):
                out.append(fold(m, nxt, 0))
                i += 2
            elif isinstance(m, nn.ConvTranspose2d) and isinstance(nxt, nn.BatchNorm2d):
                out.append(fold(m, nxt, 1))
                i += 2
            else:
                out.append(m)
                i += 1
        return nn.Sequential(*out)

    gen.fc = rebuild(gen.fc)
    gen.body = rebuild(gen.body)
    return gen


def grid_png(images: np.ndarray, nrow: int | None = None, scale: int = 2) -> bytes:
    """Tile (n, H, W, C) uint8 images into one PNG (2 px gaps), each pixel scaled up `scale` times."""
    from PIL import Image

    if images.ndim != 4 or images.shape[0] == 0 or images.shape[3] not in (1, 3):
        raise ValueError(f"expected images shaped (n, H, W, 1|3) with n >= 1, got {images.shape}")
    if not 1 <= scale <= 16:
        raise ValueError(f"scale must be 1..16, got {scale}")
    n, h, w, c = images.shape
    cols = nrow or math.ceil(math.sqrt(n))
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    pad = 2
    canvas = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = images[i]
    if scale > 1:
        canvas = canvas.repeat(scale, axis=0).repeat(scale, axis=1)
    img = Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode="L" if c == 1 else "RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
