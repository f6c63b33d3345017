"""WGAN-GP training loop: n_critic critic steps per generator step, gradient penalty, EMA generator, resumable.

One epoch is one pass of the training images through the critic. Each epoch reseeds from (seed, epoch), so a
resumed run continues exactly as an uninterrupted one would (on CPU). After every epoch the full state is written
atomically to `state_path` and the EMA generator to `out_path`, so a killed run loses at most one epoch.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generation.gan.checkpoint import FORMAT, VERSION, load_checkpoint, save_atomic
from generation.gan.data import GanDataset
from generation.gan.errors import CheckpointError, DatasetError
from generation.gan.model import Critic, GanConfig, Generator, gradient_penalty

log = logging.getLogger(__name__)


def set_threads(threads: int) -> None:
    """CPU threads for torch in this process (0 leaves torch's default)."""
    if threads:
        torch.set_num_threads(threads)


def pick_device(device: str = "auto") -> str:
    """auto -> cuda, then mps, then cpu; an explicit device that is absent is an error, not a silent fallback."""
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but MPS is not available")
    if device != "cpu" and not device.startswith(("cuda", "mps")):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


@dataclass
class TrainProgress:
    """What the progress bar shows; sent after every generator step and at the end of each epoch."""

    epoch: int
    epochs: int
    step: int
    steps: int
    d_loss: float
    g_loss: float
    wdist: float
    gp: float
    images_per_s: float
    epoch_done: bool = False


@dataclass
class TrainResult:
    epochs_run: int
    last_epoch: int
    out_path: Path
    state_path: Path
    history: list[dict[str, float]] = field(default_factory=list)


def _generator_file(cfg: GanConfig, class_names: list[str], epoch: int, ema: Generator,
                    meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT, "version": VERSION, "kind": "generator", "config": cfg.to_dict(),
        "class_names": list(class_names), "epoch": epoch,
        "generator": {k: v.detach().cpu().clone() for k, v in ema.state_dict().items()}, **meta,
    }


def train(
    data: GanDataset,
    *,
    epochs: int,
    out_path: Path,
    state_path: Path | None = None,
    cfg: GanConfig | None = None,
    resume: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: Callable[[TrainProgress], None] | None = None,
    snapshot_every: int = 0,
) -> TrainResult:
    """Train (or continue) until `epochs` epochs in total have run; returns where the files went."""
    if epochs < 1:
        raise ValueError("epochs must be at least 1")
    out_path = Path(out_path)
    state_path = Path(state_path) if state_path else out_path.with_suffix(".train.pt")
    dev = pick_device(device)
    start_epoch = 0
    history: list[dict[str, float]] = []
    state: dict[str, Any] | None = None
    if resume:
        if not state_path.exists():
            raise CheckpointError(f"--resume: no training state at {state_path}; train without --resume first")
        state = load_checkpoint(state_path, kind="training")
        cfg = state["config"]
        if state["class_names"] != data.class_names:
            raise CheckpointError(
                f"--resume: {state_path} was trained on classes {state['class_names']}, the data has {data.class_names}"
            )
        seed = int(state.get("seed", seed))
        start_epoch = int(state["epoch"])
        history = list(state.get("history", []))
    cfg = cfg or GanConfig(image_size=data.image_size, channels=data.channels, num_classes=len(data.class_names))
    if (cfg.image_size, cfg.channels, cfg.num_classes) != (data.image_size, data.channels, len(data.class_names)):
        raise DatasetError(
            f"data is {data.image_size}x{data.image_size}x{data.channels} with {len(data.class_names)} classes; "
            f"the model expects {cfg.image_size}x{cfg.image_size}x{cfg.channels} with {cfg.num_classes}"
        )
    if len(data.images) < 2:
        raise DatasetError(f"{data.name}: need at least 2 images to train, got {len(data.images)}")

    torch.manual_seed(seed)
    gen, critic = Generator(cfg).to(dev), Critic(cfg).to(dev)
    ema = copy.deepcopy(gen).eval()
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    if state is not None:
        try:
            gen.load_state_dict(state["generator_live"])
            ema.load_state_dict(state["generator"])
            critic.load_state_dict(state["critic"])
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"--resume: {state_path} does not match this model: {e}") from None
        log.info("resuming %s from epoch %d", state_path, start_epoch)

    images = torch.from_numpy(np.ascontiguousarray(data.images.transpose(0, 3, 1, 2))).to(dev)
    labels = torch.from_numpy(data.labels).to(dev)
    n, bs = len(images), min(cfg.batch_size, len(images))
    steps = max(1, n // bs)
    meta = {"dataset": data.name, "seed": seed}
    for epoch in range(start_epoch + 1, epochs + 1):
        torch.manual_seed(seed * 100_003 + epoch)
        order = torch.from_numpy(np.random.default_rng((seed, epoch)).permutation(n)).to(dev)
        t0, sums, g_steps, g_loss = time.perf_counter(), np.zeros(3), 0, float("nan")
        gen.train()
        for step in range(steps):
            idx = order[step * bs:(step + 1) * bs]
            real = images[idx].float().div_(127.5).sub_(1.0)
            y = labels[idx]
            with torch.no_grad():
                fake = gen(torch.randn(len(idx), cfg.z_dim, device=dev), y)
            d_real, d_fake = critic(real, y).mean(), critic(fake, y).mean()
            gp = gradient_penalty(critic, real, fake, y)
            d_loss = d_fake - d_real + cfg.gp_lambda * gp
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            sums += (d_loss.item(), (d_real - d_fake).item(), gp.item())
            if (step + 1) % cfg.n_critic == 0:
                for p in critic.parameters():
                    p.requires_grad_(False)
                yg = torch.randint(0, cfg.num_classes, (bs,), device=dev)
                g_loss_t = -critic(gen(torch.randn(bs, cfg.z_dim, device=dev), yg), yg).mean()
                opt_g.zero_grad(set_to_none=True)
                g_loss_t.backward()
                opt_g.step()
                for p in critic.parameters():
                    p.requires_grad_(True)
                _ema_update(ema, gen, min(cfg.ema_decay, (1 + opt_steps(opt_g)) / (10 + opt_steps(opt_g))))
                g_loss, g_steps = g_loss_t.item(), g_steps + 1
                if progress:
                    k = step + 1
                    progress(TrainProgress(epoch, epochs, k, steps, sums[0] / k, g_loss, sums[1] / k,
                                           sums[2] / k, k * bs / (time.perf_counter() - t0)))
        secs = time.perf_counter() - t0
        # plain floats: numpy scalars in the history would make the state unloadable with weights_only=True
        record = {"epoch": epoch, "d_loss": float(sums[0] / steps), "g_loss": float(g_loss),
                  "wdist": float(sums[1] / steps), "gp": float(sums[2] / steps), "seconds": float(secs)}
        history.append(record)
        if not all(math.isfinite(v) for v in (record["d_loss"], record["wdist"])):
            raise RuntimeError(f"training diverged at epoch {epoch} (loss is not finite); lower the learning rate")
        save_atomic({
            "format": FORMAT, "version": VERSION, "kind": "training", "config": cfg.to_dict(),
            "class_names": list(data.class_names), "epoch": epoch, "seed": seed, "history": history,
            "dataset": data.name,
            "generator": {k: v.detach().cpu() for k, v in ema.state_dict().items()},
            "generator_live": {k: v.detach().cpu() for k, v in gen.state_dict().items()},
            "critic": {k: v.detach().cpu() for k, v in critic.state_dict().items()},
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
        }, state_path)
        gen_file = _generator_file(cfg, data.class_names, epoch, ema, meta)
        save_atomic(gen_file, out_path)
        if snapshot_every and epoch % snapshot_every == 0:
            save_atomic(gen_file, state_path.with_name(f"{out_path.stem}-e{epoch:04d}.pt"))
        log.info("epoch %d/%d d_loss=%.3f wdist=%.3f gp=%.3f g_loss=%.3f %.1fs (%.0f img/s)", epoch, epochs,
                 record["d_loss"], record["wdist"], record["gp"], g_loss, secs, n / secs)
        if progress:
            progress(TrainProgress(epoch, epochs, steps, steps, record["d_loss"], g_loss, record["wdist"],
                                   record["gp"], n / secs, epoch_done=True))
    return TrainResult(max(0, epochs - start_epoch), max(epochs, start_epoch), out_path, state_path, history)


def opt_steps(opt: torch.optim.Optimizer) -> int:
    """Generator steps taken so far (survives --resume through the optimizer state): warms the EMA up."""
    for st in opt.state.values():
        if "step" in st:
            return int(st["step"])
    return 0


@torch.no_grad()
def _ema_update(ema: Generator, live: Generator, decay: float) -> None:
    """Average weights and BN running stats: the EMA generator is the one that ships (steadier samples)."""
    for e, p in zip(ema.parameters(), live.parameters(), strict=True):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), live.buffers(), strict=True):
        if e.dtype.is_floating_point:
            e.lerp_(b, 1.0 - decay)
        else:
            e.copy_(b)
