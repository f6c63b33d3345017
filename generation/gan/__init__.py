"""Class-conditional WGAN-GP: training (`train`), sampling (`GanSampler`, `grid_png`) and its errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from generation.gan.errors import CheckpointError, DatasetError, UnknownLabel

if TYPE_CHECKING:
    from generation.gan.sample import GanSampler, grid_png

__all__ = ["CheckpointError", "DatasetError", "GanSampler", "UnknownLabel", "grid_png"]


def __getattr__(name: str) -> Any:
    """GanSampler and grid_png import torch; load them on first use so `import generation.gan` stays light."""
    if name in ("GanSampler", "grid_png"):
        from generation.gan import sample

        return getattr(sample, name)
    raise AttributeError(name)
