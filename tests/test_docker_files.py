"""docker/: Docker is not installed here, so the files are checked by reading them: compose.yaml parses and wires
the services together, both Dockerfiles drop root and have a healthcheck, and every command they run is a real
taskwright subcommand with real options."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _exec_form(args: str) -> list[str]:
    args = args.strip()
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def _check_taskwright_command(argv: list[str]) -> None:
    """argv is `taskwright <sub> [--opt value ...]`: the subcommand and each option must exist."""
    from bot.cli import cli

    assert argv[0] == "taskwright", argv
    sub = cli.commands.get(argv[1])
    assert sub is not None, f"taskwright has no subcommand {argv[1]!r}"
    known = {opt for p in sub.params for opt in getattr(p, "opts", [])}
    for word in argv[2:]:
        if word.startswith("-"):
            assert word in known, f"taskwright {argv[1]} has no option {word}"


@pytest.fixture(scope="module")
def compose() -> dict:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_services_gpu_volume_and_wiring(compose):
    services = compose["services"]
    assert {"bot", "generation", "vllm"} <= set(services)
    gen, bot, vllm = services["generation"], services["bot"], services["vllm"]
    for svc, name in ((gen, "generation"), (vllm, "vllm")):
        devices = svc["deploy"]["resources"]["reservations"]["devices"]
        assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), name
    assert "deploy" not in bot  # the bot needs no GPU
    assert vllm["profiles"] == ["vllm"] and "profiles" not in bot and "profiles" not in gen
    # TASKWRIGHT_HOME on named volumes
    assert bot["environment"]["TASKWRIGHT_HOME"] == "/data"
    vol = bot["volumes"][0].split(":")
    assert vol[1] == "/data" and vol[0] in compose["volumes"]
    assert gen["volumes"][0].split(":")[0] in compose["volumes"]
    # the bot reaches the service by its compose name and port; the planner speaks OpenAI to it (or to vLLM)
    assert bot["environment"]["TASKWRIGHT_GENERATION_URL"] == "http://generation:8000"
    assert "openai" in bot["environment"]["TASKWRIGHT_LLM"]
    assert "http://generation:8000/v1" in bot["environment"]["OPENAI_BASE_URL"]
    assert bot["depends_on"]["generation"]["condition"] == "service_healthy"
    for name in ("bot", "generation", "vllm"):
        hc = services[name]["healthcheck"]
        assert hc["test"][0] == "CMD" and hc["interval"] and hc["retries"] >= 1
    assert "/healthz" in " ".join(gen["healthcheck"]["test"])
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    for name in ("bot", "generation"):
        context = (DOCKER / services[name]["build"]["context"]).resolve()
        assert context == ROOT and (context / services[name]["build"]["dockerfile"]).is_file()


@pytest.mark.parametrize("name", ["Dockerfile.bot", "Dockerfile.generation"])
def test_dockerfiles_are_non_root_healthchecked_and_run_real_commands(name):
    ins = _instructions(DOCKER / name)
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), "the final image must not run as root"
    last_from = max(k for k, (i, _) in enumerate(ins) if i == "FROM")
    assert any(i == "USER" for i, _ in ins[last_from:]), "USER must be set in the final stage"
    assert any(i == "HEALTHCHECK" for i, _ in ins[last_from:])
    cmd = [a for i, a in ins if i == "CMD"][-1]
    _check_taskwright_command(_exec_form(cmd))
    for i, a in ins:  # everything copied from the build context exists
        if i == "COPY" and "--from" not in a:
            for src in _exec_form(a)[:-1]:
                assert (ROOT / src).exists(), f"{name}: COPY source {src} is missing"


def test_generation_image_is_cuda_with_gpu_torch_and_serves_on_all_interfaces():
    text = (DOCKER / "Dockerfile.generation").read_text()
    assert re.search(r"nvidia/cuda:\S+", text)
    assert "download.pytorch.org/whl/cu" in text
    cmd = [a for i, a in _instructions(DOCKER / "Dockerfile.generation") if i == "CMD"][-1]
    argv = _exec_form(cmd)
    assert argv[:2] == ["taskwright", "serve"] and argv[argv.index("--host") + 1] == "0.0.0.0"
    assert "8000" in argv and "EXPOSE 8000" in text
    bot = (DOCKER / "Dockerfile.bot").read_text()
    assert "python:" in bot and "-slim" in bot and "download.pytorch.org/whl/cpu" in bot


def test_the_healthz_route_exists_in_the_service():
    assert '@app.get("/healthz")' in (ROOT / "generation" / "server.py").read_text()


def test_dockerignore_keeps_the_context_small():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".venv" in lines and ".git" in lines
