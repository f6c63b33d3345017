"""Checkpoint files: atomic writes, and loads that turn every way a file can be wrong into a CheckpointError.

Two kinds share one format: "training" (generator, EMA generator, critic, both optimizers, RNG, history: what
--resume needs) and "generator" (the EMA generator only: what ships and what the sampler needs). Both carry the
config and class names so a file is self-describing. Loading uses torch.load(weights_only=True): a checkpoint
from someone else cannot run code.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from generation.gan.errors import CheckpointError
from generation.gan.model import GanConfig

log = logging.getLogger(__name__)

FORMAT = "taskwright-gan"
VERSION = 1
SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"
SHIPPED = SHIPPED_DIR / "mnist5k.pt"


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write to a temp file in the same folder, fsync, then rename: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a checkpoint is meant to be shared
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, *, kind: str | None = None, map_location: str = "cpu") -> dict[str, Any]:
    """Load and validate; `kind` "training" insists on a resumable file. Raises CheckpointError naming the file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError,
            AttributeError, IndexError, KeyError, TypeError) as e:
        log.warning("checkpoint %s failed to load: %s", path, e)
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        if "Unsupported global" in str(e):
            raise CheckpointError(
                f"checkpoint {path} holds pickled objects other than weights; refused, because loading it "
                "could run code (a Taskwright checkpoint holds tensors, numbers and strings only)"
            ) from None
        raise CheckpointError(
            f"checkpoint {path} is corrupt, truncated or not a PyTorch file ({e.__class__.__name__}: {first[:200]})"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a Taskwright GAN checkpoint (no '{FORMAT}' marker)")
    if obj.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {obj.get('version')!r}; this code reads {VERSION}")
    for key in ("config", "class_names", "generator"):
        if key not in obj:
            raise CheckpointError(f"checkpoint {path} lacks {key!r}")
    if kind == "training" and obj.get("kind") != "training":
        raise CheckpointError(
            f"checkpoint {path} holds generator weights only and cannot be resumed; resume from its training state"
        )
    try:
        cfg = GanConfig.from_dict(dict(obj["config"]))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {e}") from None
    names = obj["class_names"]
    if not isinstance(names, list) or len(names) != cfg.num_classes or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"checkpoint {path}: class_names do not match num_classes={cfg.num_classes}")
    obj["config"] = cfg
    return obj
