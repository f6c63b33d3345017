"""The generation benchmark on a CUDA machine in under 5 minutes (`python -m bench.gpu_check`).

Runs bench/generation.py's measurements with TASKWRIGHT_DEVICE=cuda: text tokens/s at batch 1, 8 and 32
concurrent clients with the batcher on vs one-at-a-time (TASKWRIGHT_BATCH_MAX=1), images/s at batch
1/64/256 via the service and in-process; plus GAN training images/s for a few steps (WGAN-GP on MNIST-5k).
Nothing is downloaded: the text model is the embedded GGUF when it is already fetched (TASKWRIGHT_TEXT_MODEL,
or --model), else the tiny random model, and the table says which.

Without CUDA it says so and runs the CPU-sized quick run (tiny model, a few GAN steps on the CPU), then
exits 0, so the script can sit in any CI; `--require-cuda` makes it exit 2 instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from bench.generation import BenchConfig, render, run

BUDGET_S = 300


def gan_training_images_per_s(device: str, images: int, epochs: int) -> tuple[float, int, str]:
    """(critic images/s of the last epoch, images per epoch, dataset) for a WGAN-GP trained from scratch."""
    import numpy as np

    from generation.gan.data import GanDataset, load_dataset
    from generation.gan.train import TrainProgress, train

    data = load_dataset("builtin:mnist5k", split="train")
    n = min(images, len(data.images))
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(data.images))[:n]
    subset = GanDataset(data.images[pick], data.labels[pick], data.class_names, f"{data.name}[:{n}]")
    rates: list[float] = []

    def progress(p: TrainProgress) -> None:
        if p.epoch_done:
            rates.append(p.images_per_s)

    with tempfile.TemporaryDirectory(prefix="tw-gpu-check-") as tmp:
        train(subset, epochs=epochs, out_path=Path(tmp) / "g.pt", device=device, seed=0, progress=progress)
    return rates[-1], n, subset.name


def embedded_model_present(name: str) -> bool:
    from bot.settings import load_settings
    from planner.models import REGISTRY, is_present

    if name in REGISTRY:
        return bool(is_present(REGISTRY[name], load_settings().models_dir))
    return Path(name).expanduser().exists()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="text model (default TASKWRIGHT_TEXT_MODEL if fetched)")
    ap.add_argument("--require-cuda", action="store_true", help="exit 2 when CUDA is not available")
    args = ap.parse_args(argv)

    import torch

    from bot.settings import load_settings

    t0 = time.perf_counter()
    cuda = torch.cuda.is_available()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if cuda:
        device = "cuda"
        print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
        model = args.model or load_settings().text_model
        quick = not embedded_model_present(model)
        if quick:
            print(f"the text model {model} is not fetched here (nothing is downloaded): using the tiny model")
        cfg = BenchConfig(model=model, tokens=64, threads=4, device="cuda", peer=False, quick=quick,
                          requests={1: 3, 8: 32, 32: 64}, image_seconds=2.0)  # fmt: skip
        gan_images, gan_epochs = 4000, 2
    else:
        built = getattr(torch.version, "cuda", None)
        why = "torch is a CPU-only build" if built is None else f"torch {torch.__version__} sees no CUDA device"
        if args.require_cuda:
            print(f"bench.gpu_check: CUDA is not available ({why}).", file=sys.stderr)
            return 2
        print(f"CUDA is not available ({why}): running the CPU-sized quick run instead "
              "(tiny text model, a few GAN steps); this is not a GPU figure.")  # fmt: skip
        device = "cpu"
        cfg = BenchConfig(model="tiny", tokens=16, threads=1, device="cpu", peer=False, quick=True, image_seconds=0.5)
        gan_images, gan_epochs = 640, 1
    try:
        res = run(cfg, say=say)
    except RuntimeError as exc:
        print(f"bench.gpu_check: {exc}", file=sys.stderr)
        return 1
    print(render(res))
    say("GAN training ...")
    rate, n, name = gan_training_images_per_s(device, gan_images, gan_epochs)
    print(f"\nGAN training (WGAN-GP, n_critic 5, batch 64, {name}, {gan_epochs} epoch(s) of {n} images on "
          f"{device}): {rate:,.0f} critic images/s in the last epoch")  # fmt: skip
    total = time.perf_counter() - t0
    over = f" (over the {BUDGET_S // 60}-minute budget)" if cuda and total > BUDGET_S else ""
    print(f"gpu_check total: {total / 60:.1f} min{over}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
