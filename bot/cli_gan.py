"""`taskwright gan train|sample`: train the class-conditional GAN on a builtin set or a folder, draw a PNG grid.

torch is imported (by generation.gan) inside the commands, so `taskwright --help` stays light.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from bot.settings import Settings, load_settings

log = logging.getLogger(__name__)

SAMPLE_MAX = 256


def _settings() -> Settings:
    obj = click.get_current_context().obj
    if isinstance(obj, dict) and isinstance(obj.get("settings"), Settings):
        return obj["settings"]
    return load_settings()


def _default_out(data: str) -> Path:
    stem = data.split(":", 1)[1] if data.startswith("builtin:") else Path(data).resolve().name or "gan"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "gan"
    return _settings().home / "gan" / f"{stem}.pt"


@click.group()
def gan() -> None:
    """Train the image GAN on your own images, or draw samples from a checkpoint."""


@gan.command()
@click.option("--data", required=True, help="builtin:mnist5k | builtin:digits8 | builtin:animals, or a folder "
              "with one sub-folder of images per class.")
@click.option("--epochs", required=True, type=click.IntRange(1, 100_000), help="Total epochs (counting resumed).")
@click.option("--resume", is_flag=True, help="Continue from the training state next to --out.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Generator checkpoint to write (default: $TASKWRIGHT_HOME/gan/<data name>.pt); the "
                   "resumable training state goes beside it as <name>.train.pt.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True,
              help="auto = cuda > mps > cpu.")
@click.option("--image-size", type=click.IntRange(4, 64), default=None,
              help="Folder data: resize images to this square size (default 28; builtins are 28 or 8).")
@click.option("--channels", type=click.Choice(["1", "3"]), default=None,
              help="Folder data: 1 = grey, 3 = RGB (default 1).")
@click.option("--lr", type=click.FloatRange(1e-6, 1e-2), default=2e-4, show_default=True, help="Adam learning rate.")
@click.option("--batch-size", type=click.IntRange(2, 4096), default=32, show_default=True)
@click.option("--g-width", type=click.IntRange(4, 256), default=16, show_default=True,
              help="Generator width (bigger draws better and slower).")
@click.option("--ema-decay", type=click.FloatRange(0.0, 0.99999), default=0.995, show_default=True)
@click.option("--threads", type=click.IntRange(0, 256), default=0,
              help="CPU threads for torch (0 = torch's default).")
def train(data: str, epochs: int, resume: bool, out: Path | None, seed: int, device: str, image_size: int | None,
          channels: str | None, lr: float, batch_size: int, g_width: int, ema_decay: float, threads: int) -> None:
    """Train (or with --resume continue) a class-conditional WGAN-GP; writes a checkpoint after every epoch.

    Builtin sets train on their training split (100 images per class are held out for bench/gan).
    """
    from generation.gan.data import load_dataset
    from generation.gan.errors import CheckpointError, DatasetError
    from generation.gan.model import GanConfig
    from generation.gan.train import TrainProgress, pick_device, set_threads
    from generation.gan.train import train as run_train

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    set_threads(threads)
    if data.startswith("builtin:") and (image_size or channels):
        raise click.UsageError("--image-size/--channels apply to folder data; builtin sets have a fixed size")
    try:
        dev = pick_device(device)
        ds = load_dataset(data, split="train" if data.startswith("builtin:") else "all", seed=seed,
                          image_size=image_size, channels=int(channels) if channels else None)
    except (DatasetError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    if ds.skipped:
        click.echo(f"skipped {len(ds.skipped)} unreadable file(s), e.g. {ds.skipped[0]}", err=True)
    out_path = out or _default_out(data)
    try:
        cfg = GanConfig(image_size=ds.image_size, channels=ds.channels, num_classes=len(ds.class_names), lr=lr,
                        batch_size=batch_size, g_width=g_width, ema_decay=ema_decay)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"training on {ds.name}: {len(ds.images)} images, {len(ds.class_names)} classes "
               f"({', '.join(ds.class_names[:12])}{' ...' if len(ds.class_names) > 12 else ''}), "
               f"{ds.image_size}x{ds.image_size}x{ds.channels}, device {dev}", err=True)

    bar: Any = None
    shown: dict[str, Any] = {"step": 0, "epoch": 0, "status": ""}
    t_start = time.perf_counter()
    stderr = sys.stderr  # CliRunner swaps it too
    to_terminal = stderr.isatty()

    def progress(p: TrainProgress) -> None:
        nonlocal bar
        status = f"d {p.d_loss:.3f} g {p.g_loss:.3f} W {p.wdist:.3f} gp {p.gp:.3f} {p.images_per_s:,.0f} img/s"
        if not to_terminal:  # a log file: one line per epoch, no bar
            if p.epoch_done:
                click.echo(f"epoch {p.epoch}/{p.epochs} {status}", err=True)
            return
        if bar is None or p.epoch != shown["epoch"]:
            if bar is not None:
                bar.render_finish()
            bar = click.progressbar(length=p.steps, label=f"epoch {p.epoch}/{p.epochs}", show_eta=True, width=24,
                                    file=stderr, item_show_func=lambda _: shown["status"])
            shown.update(step=0, epoch=p.epoch)
        shown["status"] = status
        bar.update(p.step - shown["step"])
        shown["step"] = p.step
        if p.epoch_done:
            bar.render_finish()
            bar = None
            shown["epoch"] = 0

    try:
        result = run_train(ds, epochs=epochs, out_path=out_path, cfg=None if resume else cfg, resume=resume,
                           seed=seed, device=dev, progress=progress)
    except (CheckpointError, DatasetError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    except RuntimeError as e:  # diverged
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; continue with --resume --out {out_path}") from None
    finally:
        if bar is not None:
            bar.render_finish()
    if result.epochs_run == 0:
        click.echo(f"already trained to epoch {result.last_epoch}; raise --epochs to continue", err=True)
    click.echo(f"wrote {result.out_path} (epoch {result.last_epoch}, {time.perf_counter() - t_start:.0f}s); "
               f"resumable state {result.state_path}")


@gan.command()
@click.option("--label", required=True, help="Class to draw, e.g. 7 (see the error message for the list).")
@click.option("-n", "n", type=int, default=16, show_default=True, help=f"Images in the grid (1..{SAMPLE_MAX}).")
@click.option("--seed", type=int, default=None, help="Same seed, same images.")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Default: TASKWRIGHT_GAN_CHECKPOINT or the shipped MNIST-5k checkpoint.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="cpu", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PNG file to write.")
def sample(label: str, n: int, seed: int | None, checkpoint: Path | None, device: str, output: Path) -> None:
    """Draw n images of one class into a PNG grid."""
    if not 1 <= n <= SAMPLE_MAX:
        raise click.BadParameter(f"must be between 1 and {SAMPLE_MAX} (got {n})", param_hint="-n")
    from generation.gan.errors import CheckpointError, UnknownLabel
    from generation.gan.sample import GanSampler, grid_png

    try:
        sampler = GanSampler.load(checkpoint or _settings().gan_checkpoint, device=device)
        images = sampler.sample(label, n, seed)
    except (CheckpointError, UnknownLabel, ValueError) as e:
        raise click.ClickException(str(e)) from None
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(grid_png(images))
    except OSError as e:
        raise click.ClickException(f"cannot write {output}: {e.strerror or e}") from None
    click.echo(f"wrote {output}: {n} x '{sampler.class_names[sampler.class_index(label)]}'")
