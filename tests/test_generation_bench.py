"""bench/gpu_check on a machine without CUDA: it says so, runs the CPU-sized quick run through bench/generation
(a real `taskwright serve` subprocess, twice) and exits 0; --require-cuda exits 2. No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is here: run `python -m bench.gpu_check` itself (the full GPU run, up to 5 minutes)")


def test_require_cuda_exits_2_with_the_reason() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--require-cuda"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "CUDA is not available" in done.stderr


@pytest.mark.slow
def test_without_cuda_the_quick_run_prints_the_whole_table() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.gpu_check"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert out.startswith("CUDA is not available") and "this is not a GPU figure" in out
    for row in ("| 1 client (2 req) | tokens/s |", "| 8 clients (16 req) | tokens/s |", "(target ≥ 3)",
                "| 32 clients (32 req) | tokens/s |", "| 1 |", "| 64 |", "| 256 |", "GAN training (WGAN-GP"):
        assert row in out, row
    assert "errors" not in out  # every request of the run was answered
    assert "critic images/s" in out and "gpu_check total:" in out
