"""The GAN package end to end on real (small) data: training, resume, folder datasets, checkpoints, sampling, CLI.

Everything runs on CPU with builtin:digits8 (sklearn's 8x8 digits) or PNG folders written into tmp_path, so each
test takes seconds. The shipped MNIST-5k checkpoint is checked against the real MNIST-5k images.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from generation.gan.checkpoint import SHIPPED, load_checkpoint
from generation.gan.data import load_dataset
from generation.gan.errors import CheckpointError, DatasetError, UnknownLabel
from generation.gan.model import GanConfig
from generation.gan.sample import GanSampler, grid_png
from generation.gan.train import train

SMALL = {"g_width": 8, "d_width": 16, "batch_size": 32, "lr": 2e-4}


@pytest.fixture(scope="module")
def digits8():
    return load_dataset("builtin:digits8", split="train", seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits8):
    """Two epochs on digits8: the generator file, its training state and the result."""
    d = tmp_path_factory.mktemp("gan")
    torch.set_num_threads(1)
    cfg = GanConfig(image_size=8, channels=1, num_classes=10, **SMALL)
    res = train(digits8, epochs=2, out_path=d / "d8.pt", cfg=cfg, seed=3, device="cpu")
    return res


def _png_folder(root: Path, classes: dict[str, int], size: int = 12, rgb: bool = False) -> Path:
    """One sub-folder per class holding real PNG files (a bright square whose place depends on the class)."""
    rng = np.random.default_rng(0)
    for k, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            arr = rng.integers(0, 40, size=(size, size, 3 if rgb else 1), dtype=np.uint8)
            arr[k * 3:k * 3 + 5, 2:7] = 230
            img = Image.fromarray(arr if rgb else arr[..., 0], mode="RGB" if rgb else "L")
            img.save(root / name / f"{i}.png")
    return root


# --- training -----------------------------------------------------------------------------------------------

def test_training_writes_a_self_describing_checkpoint(trained, digits8):
    assert trained.epochs_run == 2 and trained.last_epoch == 2
    assert len(trained.history) == 2
    for rec in trained.history:
        assert all(math.isfinite(rec[k]) for k in ("d_loss", "g_loss", "wdist", "gp"))
        assert abs(rec["d_loss"]) < 1e3 and 0 <= rec["gp"] < 1e3  # nothing absurd after a few steps
    ck = load_checkpoint(trained.out_path)
    assert ck["kind"] == "generator" and ck["epoch"] == 2
    assert ck["class_names"] == digits8.class_names == [str(k) for k in range(10)]
    assert ck["config"].image_size == 8 and ck["config"].g_width == 8
    state = load_checkpoint(trained.state_path, kind="training")
    assert {"critic", "opt_g", "opt_d", "generator_live"} <= set(state)


def test_resume_continues_and_equals_an_uninterrupted_run(tmp_path, digits8, trained):
    torch.set_num_threads(1)
    cfg = GanConfig(image_size=8, channels=1, num_classes=10, **SMALL)
    first = train(digits8, epochs=1, out_path=tmp_path / "r.pt", cfg=cfg, seed=3, device="cpu")
    assert first.last_epoch == 1
    resumed = train(digits8, epochs=2, out_path=tmp_path / "r.pt", resume=True, seed=99, device="cpu")
    assert resumed.epochs_run == 1 and resumed.last_epoch == 2  # continued from epoch 1, kept the saved seed
    a = load_checkpoint(tmp_path / "r.pt")["generator"]
    b = load_checkpoint(trained.out_path)["generator"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # asking for epochs already done runs nothing
    again = train(digits8, epochs=2, out_path=tmp_path / "r.pt", resume=True, device="cpu")
    assert again.epochs_run == 0


def test_resume_without_state_or_from_a_generator_file_is_a_clear_error(tmp_path, digits8, trained):
    with pytest.raises(CheckpointError, match="no training state"):
        train(digits8, epochs=2, out_path=tmp_path / "none.pt", resume=True, device="cpu")
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        train(digits8, epochs=3, out_path=tmp_path / "x.pt", state_path=trained.out_path, resume=True, device="cpu")


def test_folder_dataset_with_one_subfolder_per_class_trains(tmp_path):
    root = _png_folder(tmp_path / "imgs", {"circle": 12, "square": 12})
    (root / "square" / "notes.txt").write_text("not an image")
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    ds = load_dataset(str(root), split="all", image_size=12, channels=1)
    assert ds.class_names == ["circle", "square"] and len(ds.images) == 24 and ds.images.shape[1:] == (12, 12, 1)
    assert len(ds.skipped) == 2 and any("notes.txt" in s for s in ds.skipped)
    res = train(ds, epochs=1, out_path=tmp_path / "f.pt", seed=0, device="cpu",
                cfg=GanConfig(image_size=12, channels=1, num_classes=2, **SMALL))
    sampler = GanSampler.load(res.out_path, device="cpu")
    assert sampler.class_names == ["circle", "square"]
    assert sampler.sample("square", 3, seed=0).shape == (3, 12, 12, 1)


def test_rgb_folder_at_16px(tmp_path):
    root = _png_folder(tmp_path / "rgb", {"a": 4, "b": 4}, size=16, rgb=True)
    ds = load_dataset(str(root), split="all", image_size=16, channels=3)
    assert ds.images.shape == (8, 16, 16, 3)
    res = train(ds, epochs=1, out_path=tmp_path / "rgb.pt", device="cpu",
                cfg=GanConfig(image_size=16, channels=3, num_classes=2, **{**SMALL, "batch_size": 4}))
    assert GanSampler.load(res.out_path, device="cpu").sample("b", 2, seed=1).shape == (2, 16, 16, 3)


@pytest.mark.parametrize("setup, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "is not a folder"),
    (lambda p: p, "no sub-folders"),
    (lambda p: [(p / "cls").mkdir(), (p / "cls" / "a.txt").write_text("x")] and p, "contain no readable images"),
    (lambda p: [(p / "cls").mkdir(), (p / "cls" / "a.png").write_bytes(b"garbage")] and p, "no readable images"),
])
def test_empty_or_bad_folders_fail_clearly(tmp_path, setup, message):
    root = setup(tmp_path)
    with pytest.raises(DatasetError, match=message):
        load_dataset(str(root), split="all")


def test_unknown_builtin_and_heldout_of_a_folder(tmp_path):
    with pytest.raises(DatasetError, match="choose from mnist5k, digits8, animals"):
        load_dataset("builtin:cifar")
    with pytest.raises(DatasetError, match="no held-out split"):
        load_dataset(str(tmp_path), split="heldout")


# --- checkpoints --------------------------------------------------------------------------------------------

class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/taskwright-gan-test-pwned"),))


def test_bad_checkpoints_raise_checkpoint_error(tmp_path, trained):
    good = trained.out_path.read_bytes()
    cases = {
        "missing": None,
        "corrupt": b"this is not a checkpoint at all",
        "truncated": good[: len(good) // 2],
    }
    for name, data in cases.items():
        p = tmp_path / f"{name}.pt"
        if data is not None:
            p.write_bytes(data)
        with pytest.raises(CheckpointError, match=str(p).replace(".", r"\.")):
            GanSampler.load(p, device="cpu")
    with pytest.raises(CheckpointError, match="corrupt, truncated"):
        GanSampler.load(tmp_path / "corrupt.pt", device="cpu")

    # a pickle that would run code when loaded: refused by weights_only, and nothing ran
    evil = tmp_path / "evil.pt"
    marker = Path("/tmp/taskwright-gan-test-pwned")
    marker.unlink(missing_ok=True)
    torch.save({"format": "taskwright-gan", "payload": _Evil()}, evil)
    with pytest.raises(CheckpointError, match="pickled objects other than weights"):
        GanSampler.load(evil, device="cpu")
    assert not marker.exists()
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError):
        GanSampler.load(plain, device="cpu")

    # a real PyTorch file of the wrong kind: plain weights, another format version, weights of the wrong shape
    other = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), other)
    with pytest.raises(CheckpointError, match="not a Taskwright GAN checkpoint"):
        GanSampler.load(other, device="cpu")
    ck = torch.load(trained.out_path, weights_only=True)
    torch.save({**ck, "version": 99}, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        GanSampler.load(tmp_path / "v99.pt", device="cpu")
    torch.save({**ck, "config": {**ck["config"], "g_width": 32}}, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="do not match its config"):
        GanSampler.load(tmp_path / "shape.pt", device="cpu")
    torch.save({**ck, "class_names": ["a"]}, tmp_path / "names.pt")
    with pytest.raises(CheckpointError, match="class_names"):
        GanSampler.load(tmp_path / "names.pt", device="cpu")
    with pytest.raises(CheckpointError, match="not a file"):
        GanSampler.load(tmp_path, device="cpu")


# --- sampling -----------------------------------------------------------------------------------------------

def test_sampling_is_seeded_shaped_and_validated(trained):
    s = GanSampler.load(trained.out_path, device="cpu")
    a, b, c = s.sample("3", 5, seed=7), s.sample("3", 5, seed=7), s.sample("3", 5, seed=8)
    assert a.shape == (5, 8, 8, 1) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(s.sample(3, 5, seed=7), a)  # index and name agree
    # a request's images do not depend on what it is batched with
    together = s.sample_many([(1, 2, 0), (3, 5, 7)])
    assert np.array_equal(together[1], a)
    with pytest.raises(UnknownLabel, match="this model can draw: 0, 1, 2"):
        s.sample("cat", 1)
    for n in (0, -1, 10_000):
        with pytest.raises(ValueError, match="n must be"):
            s.sample("1", n)


def test_grid_png_is_a_valid_png(trained):
    s = GanSampler.load(trained.out_path, device="cpu")
    png = grid_png(s.sample("2", 6, seed=0), scale=2)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(png))
    img.load()
    cols, rows = 3, 2  # ceil(sqrt(6)) columns
    assert img.size == ((cols * 10 + 2) * 2, (rows * 10 + 2) * 2) and img.mode == "L"
    with pytest.raises(ValueError):
        grid_png(np.zeros((0, 8, 8, 1), np.uint8))


def test_shipped_checkpoint_draws_sevens():
    """Judged by a 3-nearest-neighbour classifier on the real MNIST-5k training images (pixel space, ~93% on
    real held-out digits): most of 40 sampled sevens must read as 7, and they must not be copies of each other."""
    from sklearn.neighbors import KNeighborsClassifier

    s = GanSampler.load(None, device="cpu")
    assert s.path == SHIPPED and SHIPPED.stat().st_size <= 10_000_000
    four = s.sample("7", 4, seed=0)
    assert four.shape == (4, 28, 28, 1)
    tr = load_dataset("builtin:mnist5k", split="train", seed=0)
    held = load_dataset("builtin:mnist5k", split="heldout", seed=0)
    knn = KNeighborsClassifier(3).fit(tr.images.reshape(len(tr.images), -1) / 255.0, tr.labels)
    real_acc = (knn.predict(held.images.reshape(len(held.images), -1) / 255.0) == held.labels).mean()
    sevens = s.sample("7", 40, seed=0)
    pred = knn.predict(sevens.reshape(40, -1) / 255.0)
    assert (pred[:4] == 7).sum() >= 3
    assert (pred == 7).mean() >= 0.85 * real_acc
    flat = sevens.reshape(40, -1).astype(np.float32)
    assert np.abs(flat[:, None] - flat[None]).mean(-1)[~np.eye(40, dtype=bool)].min() > 5  # not collapsed


# --- CLI ----------------------------------------------------------------------------------------------------

def test_cli_train_sample_and_errors(tmp_path, monkeypatch):
    from bot.cli import cli

    monkeypatch.setenv("TASKWRIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TASKWRIGHT_GAN_CHECKPOINT", raising=False)
    runner = CliRunner()
    out = tmp_path / "cli.pt"
    r = runner.invoke(cli, ["gan", "train", "--data", "builtin:digits8", "--epochs", "1", "--out", str(out),
                            "--device", "cpu", "--g-width", "8", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "epoch 1/1" in r.output and "img/s" in r.output and f"wrote {out}" in r.output
    assert load_checkpoint(out)["epoch"] == 1

    png = tmp_path / "grid.png"
    r = runner.invoke(cli, ["gan", "sample", "--label", "7", "-n", "4", "--seed", "1", "--checkpoint", str(out),
                            "-o", str(png)])
    assert r.exit_code == 0, r.output
    assert Image.open(png).size == ((2 * 10 + 2) * 2,) * 2

    r = runner.invoke(cli, ["gan", "sample", "--label", "giraffe", "-o", str(png)])
    assert r.exit_code == 1 and "unknown label 'giraffe'" in r.output and "0, 1, 2, 3" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    r = runner.invoke(cli, ["gan", "sample", "--label", "7", "-n", "5000", "-o", str(png)])
    assert r.exit_code == 2 and "between 1 and 256" in r.output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    r = runner.invoke(cli, ["gan", "sample", "--label", "7", "--checkpoint", str(bad), "-o", str(png)])
    assert r.exit_code == 1 and "corrupt" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["gan", "sample", "--label", "7", "--checkpoint", str(tmp_path / "nope.pt"), "-o", str(png)])
    assert r.exit_code == 1 and "does not exist" in r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(cli, ["gan", "train", "--data", str(tmp_path / "empty"), "--epochs", "1"])
    assert r.exit_code == 1 and "no sub-folders" in r.output
    r = runner.invoke(cli, ["gan", "train", "--data", "builtin:digits8", "--epochs", "2", "--resume",
                            "--out", str(tmp_path / "fresh.pt")])
    assert r.exit_code == 1 and "no training state" in r.output
