"""Benchmark the generation service (`python -m bench.generation [--model NAME] [--quick] [--tokens N]`).

Everything goes through a real `taskwright serve` subprocess on a free loopback port, started twice in the
same run: once one-at-a-time (TASKWRIGHT_BATCH_MAX=1, the baseline) and once with the batcher at its default
settings. Measured on each:
- text tokens/s with 1 client (batch 1), and with 8 and 32 concurrent clients: tokens/s, requests/s,
  p50/p95 latency (closed loop: each client sends its next request when the last one is answered). Greedy
  decoding and a fixed set of prompts, so both servers get the same work. Target: batcher >= 3x the
  one-at-a-time throughput at 8 clients.
- images/s at batch 1 (one request of n=1 at a time), 64 (one request of n=64) and 256 (four concurrent
  requests of 64, gathered into one forward pass by the image batcher), against the same GAN sampled
  in-process (no HTTP, no PNG) as the comparison.
The peer a user would pick for text: the same GGUF in llama.cpp, through xllamacpp (a dependency already)
with 8 parallel slots, and llama-cpp-python when it is installed (the optional `llamacpp` extra; not
built by default). Every engine gets the same thread count (--threads, default 1: on a busy 2-core
machine two threads per process oversubscribe the cores and decode ~2.5x slower).

--quick runs a tiny random model (tests/generation_tiny.py) in about a minute; the table's shape is the same.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TARGET_RATIO_8 = 3.0
IMAGE_BATCHES = (1, 64, 256)
IMAGES_PER_REQUEST_MAX = 64
# Prompts that ask for more text than max_tokens, so every request runs to its limit.
PROMPTS = [
    "Write a long announcement for the team offsite next Friday, with the agenda and what to bring.",
    "Draft a detailed reply to a customer whose shipment is two weeks late; apologise and explain the plan.",
    "Write a long project update for the pricing page launch: done, in progress, risks, next steps.",
    "Explain in detail how to onboard a new engineer during their first week, day by day.",
    "Write a thorough weekly report for the support team covering tickets, response times and trends.",
    "Draft a long message inviting the whole company to the quarterly planning meeting and its agenda.",
    "Write detailed release notes for version 2.4 of the mobile app with new features and fixes.",
    "Describe at length the steps to migrate the billing database to the new cluster safely.",
]


@dataclass
class BenchConfig:
    model: str
    tokens: int
    threads: int
    device: str = "cpu"
    concurrency: tuple[int, ...] = (8, 32)
    # Requests per load level: enough for a p95, few enough to keep the one-at-a-time run short.
    requests: dict[int, int] = field(default_factory=lambda: {1: 2, 8: 16, 32: 32})
    image_seconds: float = 2.0
    batch_max_on: int | None = None  # None: the service's default (TASKWRIGHT_BATCH_MAX unset)
    peer: bool = True
    request_timeout_s: float = 1800.0
    quick: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Load:
    """One load level against one server."""

    clients: int
    requests: int = 0
    errors: int = 0
    tokens: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def requests_per_s(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        import numpy as np

        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


# ---------------------------------------------------------------- the service under test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """`taskwright serve` in a subprocess on a free loopback port; SIGTERM (graceful) on exit."""

    def __init__(self, env: dict[str, str], log_path: Path, *, start_timeout_s: float = 600.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0

    def __enter__(self) -> ServiceProcess:  # noqa: PYI034
        cmd = [sys.executable, "-c", "from bot.cli import cli; cli()", "serve", "--host", "127.0.0.1",
               "--port", str(self.port)]  # fmt: skip
        self._log = self.log_path.open("wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.started_s = time.perf_counter() - t0
        return self

    def _wait_ready(self) -> None:
        import httpx

        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"taskwright serve exited with {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"taskwright serve did not start in {self.start_timeout_s:.0f} s:\n{self.tail()}")
            try:
                r = httpx.get(self.url + "/healthz", timeout=2)
                status = r.json()
                if status.get("text") == "ready":
                    break
                raise RuntimeError(f"the service started without its text model: {status}\n{self.tail()}")
            except (httpx.TransportError, ValueError):
                time.sleep(0.5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if hasattr(self, "_log"):
            self._log.close()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def chat_body(i: int, tokens: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], "max_tokens": tokens,
            "temperature": 0}  # fmt: skip


def drive(url: str, clients: int, n_requests: int, tokens: int, timeout_s: float) -> Load:
    """n_requests chat completions from `clients` closed-loop clients; wall time covers all of them."""
    import httpx

    def complete(body: dict[str, Any]) -> int:
        r = http.post("/v1/chat/completions", json=body)
        if r.status_code != 200:
            raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
        return int(r.json()["usage"]["completion_tokens"])

    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)
    with httpx.Client(base_url=url, timeout=timeout_s, limits=limits) as http:
        return _closed_loop(complete, clients, n_requests, tokens)


def images_via_service(url: str, batch: int, min_seconds: float, timeout_s: float) -> float:
    """Images/s through POST /v1/images/generations; a batch over 64 is that many concurrent requests of 64."""
    import httpx

    per = min(batch, IMAGES_PER_REQUEST_MAX)
    parallel = max(1, batch // per)
    labels = [str(d) for d in range(10)]

    def one(http: httpx.Client, k: int) -> int:
        body = {"label": labels[k % len(labels)], "n": per, "seed": k, "response_format": "b64_json"}
        r = http.post("/v1/images/generations", json=body)
        r.raise_for_status()
        return len(r.json()["data"])

    with httpx.Client(base_url=url, timeout=timeout_s) as http, ThreadPoolExecutor(parallel) as pool:
        def round_(k: int) -> int:
            return sum(pool.map(lambda j: one(http, k * parallel + j), range(parallel)))

        round_(0)  # warm-up
        done, k, t0 = 0, 1, time.perf_counter()
        while time.perf_counter() - t0 < min_seconds or k < 3:
            done += round_(k)
            k += 1
        return done / (time.perf_counter() - t0)


def images_in_process(sampler: Any, batch: int, min_seconds: float) -> float:
    """Images/s from GanSampler.sample_many (one forward pass per batch; no HTTP, no PNG)."""
    sampler.sample_many([(0, batch, 0)])
    done, k, t0 = 0, 1, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds or k < 3:
        sampler.sample_many([(k % len(sampler.class_names), batch, k)])
        done += batch
        k += 1
    return done / (time.perf_counter() - t0)


# ---------------------------------------------------------------- peers (llama.cpp on the same GGUF)


def _closed_loop(complete: Callable[[dict[str, Any]], int], clients: int, n: int, tokens: int) -> Load:
    """n requests from `clients` closed-loop threads calling complete(body) -> completion tokens.

    A request that raises counts as an error (the first reason is kept) and is left out of the latencies.
    """
    load = Load(clients, requests=n)
    lock = threading.Lock()
    counter = iter(range(n))

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            try:
                got, why = complete(chat_body(i, tokens)), ""
            except Exception as exc:  # noqa: BLE001  (a failed request is a measured outcome, not a crash)
                got, why = 0, repr(exc)[:200]
            dt = time.perf_counter() - t0
            with lock:
                if why:
                    load.errors += 1
                    load.first_error = load.first_error or why
                else:
                    load.tokens += got
                    load.latencies.append(dt)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.perf_counter() - t0
    return load


def _peer_loads(complete: Callable[[dict[str, Any]], int], cfg: BenchConfig, clients: tuple[int, ...]
                ) -> dict[int, Load]:  # fmt: skip
    complete(chat_body(0, 4))  # warm-up
    return {c: _closed_loop(complete, c, cfg.requests.get(c, 2 * c), cfg.tokens) for c in clients}


def peer_xllamacpp(gguf: Path, cfg: BenchConfig) -> dict[int, Load] | str:
    """llama.cpp through xllamacpp with 8 parallel slots (continuous batching), called in-process."""
    try:
        import xllamacpp  # type: ignore[import-untyped]
    except ImportError:
        return "not installed"
    p = xllamacpp.CommonParams()
    p.model.path = str(gguf)
    p.n_ctx = 4096
    p.cpuparams.n_threads = cfg.threads
    p.cpuparams_batch.n_threads = cfg.threads
    p.n_parallel = 8
    p.verbosity = -1
    p.warmup = False
    if cfg.device == "cuda":
        p.n_gpu_layers = 999
    try:
        server = xllamacpp.Server(p)
    except Exception as exc:  # noqa: BLE001 - the binding raises RuntimeError/ValueError with llama.cpp's message
        return f"could not load: {exc}"

    def complete(body: dict[str, Any]) -> int:
        reply = server.handle_chat_completions(body)
        return int(reply["usage"]["completion_tokens"])

    return _peer_loads(complete, cfg, (1, 8))


def peer_llama_cpp_python(gguf: Path, cfg: BenchConfig) -> dict[int, Load] | str:
    """llama-cpp-python (the optional `llamacpp` extra), batch 1 only: one Llama object serves one at a time."""
    try:
        from llama_cpp import Llama  # type: ignore[import-not-found]
    except ImportError:
        return "not installed (pip install -e '.[llamacpp]' builds it from source, ~16 CPU-minutes)"
    llm = Llama(model_path=str(gguf), n_ctx=4096, n_threads=cfg.threads, n_threads_batch=cfg.threads,
                n_gpu_layers=-1 if cfg.device == "cuda" else 0, verbose=False)  # fmt: skip

    def complete(body: dict[str, Any]) -> int:
        reply = llm.create_chat_completion(messages=body["messages"], max_tokens=body["max_tokens"], temperature=0)
        return int(reply["usage"]["completion_tokens"])

    return _peer_loads(complete, cfg, (1,))


# ---------------------------------------------------------------- the run


@dataclass
class Results:
    cfg: BenchConfig
    model_label: str
    off: dict[int, Load] = field(default_factory=dict)
    on: dict[int, Load] = field(default_factory=dict)
    images_service: dict[int, float] = field(default_factory=dict)
    images_local: dict[int, float] = field(default_factory=dict)
    peers: dict[str, dict[int, Load] | str] = field(default_factory=dict)
    startup_s: dict[str, float] = field(default_factory=dict)
    batch_max_on: int = 8
    wall_s: float = 0.0


@contextmanager
def _model_for(cfg: BenchConfig) -> Iterator[tuple[str, str, Path | None]]:
    """(TASKWRIGHT_TEXT_MODEL value, label, GGUF path for the peers or None)."""
    if cfg.quick:
        from tests.generation_tiny import build_tiny_model

        with tempfile.TemporaryDirectory(prefix="tw-bench-tiny-") as tmp:
            yield str(build_tiny_model(Path(tmp) / "tiny")), "tiny random Qwen2 (2 layers)", None
        return
    from bot.settings import load_settings
    from planner.models import REGISTRY, ensure_model

    settings = load_settings()
    path = Path(cfg.model).expanduser()
    if cfg.model not in REGISTRY and path.is_dir():
        yield str(path), path.name, None
        return
    gguf = ensure_model(cfg.model, settings.models_dir)  # a catalog name is fetched if missing (announced)
    yield cfg.model, cfg.model if cfg.model in REGISTRY else gguf.stem, gguf


def run(cfg: BenchConfig, *, say: Callable[[str], None] = print) -> Results:
    import torch

    from generation.gan import GanSampler

    t_start = time.perf_counter()
    with _model_for(cfg) as (model_value, label, gguf), tempfile.TemporaryDirectory(prefix="tw-bench-") as tmp:
        res = Results(cfg, label)
        base_env = {
            "TASKWRIGHT_TEXT_MODEL": model_value,
            "TASKWRIGHT_DEVICE": cfg.device,
            "TASKWRIGHT_LLM_THREADS": str(cfg.threads),
            "TASKWRIGHT_REQUEST_TIMEOUT": str(cfg.request_timeout_s),
            "TASKWRIGHT_QUEUE_MAX": str(max(32, *cfg.concurrency)),
            "OMP_NUM_THREADS": str(cfg.threads),
            **cfg.extra_env,
        }
        for key in ("TASKWRIGHT_BATCH_MAX", "TASKWRIGHT_BATCH_WAIT_MS"):
            base_env.pop(key, None)
        from bot.settings import load_settings

        res.batch_max_on = cfg.batch_max_on or load_settings().batch_max
        modes = (("off", {"TASKWRIGHT_BATCH_MAX": "1"}), ("on", {"TASKWRIGHT_BATCH_MAX": str(res.batch_max_on)}))
        for mode, env in modes:
            say(f"starting taskwright serve ({'one at a time' if mode == 'off' else 'batcher'}) ...")
            with ServiceProcess({**base_env, **env}, Path(tmp) / f"serve-{mode}.log") as srv:
                res.startup_s[mode] = srv.started_s
                drive(srv.url, 1, 1, 4, cfg.request_timeout_s)  # warm-up
                loads = res.off if mode == "off" else res.on
                for clients in (1, *cfg.concurrency):
                    n = cfg.requests.get(clients, 2 * clients)
                    say(f"  {clients} client(s), {n} requests of {cfg.tokens} tokens ...")
                    loads[clients] = drive(srv.url, clients, n, cfg.tokens, cfg.request_timeout_s)
                if mode == "on":
                    for b in IMAGE_BATCHES:
                        say(f"  images via the service, batch {b} ...")
                        res.images_service[b] = images_via_service(srv.url, b, cfg.image_seconds,
                                                                   cfg.request_timeout_s)  # fmt: skip
        say("images in-process ...")
        if cfg.device == "cpu":
            torch.set_num_threads(cfg.threads)
        sampler = GanSampler.load(None, device=cfg.device)
        for b in IMAGE_BATCHES:
            res.images_local[b] = images_in_process(sampler, b, cfg.image_seconds)
        if cfg.peer:
            if gguf is None:
                res.peers["llama.cpp"] = "n/a (no GGUF for this model)"
            else:
                say("peer: llama.cpp (xllamacpp) on the same GGUF ...")
                res.peers["llama.cpp via xllamacpp, 8 slots"] = peer_xllamacpp(gguf, cfg)
                say("peer: llama-cpp-python ...")
                res.peers["llama-cpp-python"] = peer_llama_cpp_python(gguf, cfg)
    res.wall_s = time.perf_counter() - t_start
    return res


# ---------------------------------------------------------------- the table


def _f(x: float, digits: int = 1) -> str:
    return "–" if math.isnan(x) else f"{x:,.{digits}f}"


def _ratio(a: float, b: float) -> str:
    return f"{b / a:.2f}" if a and not math.isnan(a) and not math.isnan(b) else "–"


def render(res: Results) -> str:
    cfg = res.cfg
    head = (f"Text: {res.model_label} on {cfg.device}, {cfg.threads} thread(s), {cfg.tokens} tokens per request "
            f"(greedy), via `taskwright serve` on loopback; batcher = TASKWRIGHT_BATCH_MAX={res.batch_max_on}, "
            f"baseline = TASKWRIGHT_BATCH_MAX=1, same run")  # fmt: skip
    out = [head, ""]
    out += ["| load | measure | one at a time (baseline) | batcher | ratio |", "| --- | --- | ---: | ---: | ---: |"]
    for clients in (1, *cfg.concurrency):
        off, on = res.off.get(clients), res.on.get(clients)
        if off is None or on is None:
            continue
        who = f"{clients} client{'s' if clients > 1 else ''} ({off.requests} req)"
        target = f" (target ≥ {TARGET_RATIO_8:.0f})" if clients == 8 else ""
        out.append(f"| {who} | tokens/s | {_f(off.tokens_per_s)} | {_f(on.tokens_per_s)} | "
                   f"{_ratio(off.tokens_per_s, on.tokens_per_s)}{target} |")  # fmt: skip
        if clients > 1:
            out.append(f"| | requests/s | {_f(off.requests_per_s, 2)} | {_f(on.requests_per_s, 2)} | "
                       f"{_ratio(off.requests_per_s, on.requests_per_s)} |")  # fmt: skip
        out.append(f"| | p50 latency s | {_f(off.pct(50), 2)} | {_f(on.pct(50), 2)} | {_ratio(off.pct(50), on.pct(50))} |")
        out.append(f"| | p95 latency s | {_f(off.pct(95), 2)} | {_f(on.pct(95), 2)} | {_ratio(off.pct(95), on.pct(95))} |")
        if off.errors or on.errors:
            out.append(f"| | errors | {off.errors} | {on.errors} | {off.first_error or on.first_error} |")
    if res.peers:
        ours1, ours8 = res.on.get(1), res.on.get(8)
        peer_head = ("Peer on the same GGUF (llama.cpp runs it quantised; ours runs it de-quantised to "
                     f"{'float32' if cfg.device == 'cpu' else 'bfloat16'}); ratio = peer / ours")
        out += ["", peer_head, "",
                "| engine | 1 client tokens/s | 8 clients tokens/s | ratio 1 client | ratio 8 clients |",
                "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
        if ours1 and ours8:
            out.append(f"| taskwright serve (batcher) | {_f(ours1.tokens_per_s)} | {_f(ours8.tokens_per_s)} | 1.00 | 1.00 |")
        for name, peer in res.peers.items():
            if isinstance(peer, str):
                out.append(f"| {name} | {peer} | | | |")
                continue
            p1, p8 = peer.get(1), peer.get(8)
            t1 = p1.tokens_per_s if p1 else float("nan")
            t8 = p8.tokens_per_s if p8 else float("nan")
            out.append(f"| {name} | {_f(t1)} | {_f(t8)} | {_ratio(ours1.tokens_per_s, t1) if ours1 else '–'} | "
                       f"{_ratio(ours8.tokens_per_s, t8) if ours8 else '–'} |")  # fmt: skip
    images_head = (f"Images: the shipped MNIST-5k GAN on {cfg.device}; batch 256 via the service = 4 concurrent "
                   "requests of 64 (one forward pass); in-process = GanSampler.sample_many, no HTTP or PNG")
    out += ["", images_head, "",
            "| batch | service images/s | in-process images/s | service / in-process |", "| ---: | ---: | ---: | ---: |"]
    for b in IMAGE_BATCHES:
        s, local = res.images_service.get(b, float("nan")), res.images_local.get(b, float("nan"))
        out.append(f"| {b} | {_f(s, 0)} | {_f(local, 0)} | {_ratio(local, s)} |")
    starts = ", ".join(f"{k} {v:.0f} s" for k, v in res.startup_s.items())
    out += ["", f"Service start-up (model load): {starts}. Whole run: {res.wall_s / 60:.1f} min."]
    return "\n".join(out)


def to_json(res: Results) -> dict[str, Any]:
    def loads(d: dict[int, Load]) -> dict[str, Any]:
        return {str(k): {"tokens_per_s": v.tokens_per_s, "requests_per_s": v.requests_per_s, "p50_s": v.pct(50),
                         "p95_s": v.pct(95), "requests": v.requests, "errors": v.errors} for k, v in d.items()}

    return {
        "model": res.model_label, "device": res.cfg.device, "threads": res.cfg.threads, "tokens": res.cfg.tokens,
        "batch_max": res.batch_max_on, "one_at_a_time": loads(res.off), "batcher": loads(res.on),
        "images_service": res.images_service, "images_in_process": res.images_local,
        "peers": {k: v if isinstance(v, str) else loads(v) for k, v in res.peers.items()}, "wall_s": res.wall_s,
    }  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from bot.settings import load_settings

    ap = argparse.ArgumentParser(prog="python -m bench.generation", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="a catalog name, .gguf or model folder (default: "
                    f"TASKWRIGHT_TEXT_MODEL, i.e. {load_settings().text_model})")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="the tiny random model, fewer requests (about a minute)")
    ap.add_argument("--tokens", type=int, default=None, help="max_tokens per request (default 32; 16 with --quick)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per engine (default 1; see the docstring)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--no-peer", action="store_true", help="skip the llama.cpp peers")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    return ap.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    from bot.settings import load_settings

    cfg = BenchConfig(model=args.model or load_settings().text_model, tokens=args.tokens or (16 if args.quick else 32),
                      threads=args.threads, device=args.device, peer=not args.no_peer, quick=args.quick)  # fmt: skip
    if args.quick:
        cfg.image_seconds = 0.5
    return cfg


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    cfg = config_from_args(args)
    try:
        res = run(cfg, say=lambda m: print(m, file=sys.stderr, flush=True))
    except RuntimeError as exc:
        print(f"bench.generation: {exc}", file=sys.stderr)
        return 1
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(to_json(res), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
