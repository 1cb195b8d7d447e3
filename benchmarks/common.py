"""Shared pieces of the throughput benchmarks: configs, states, inputs, timing, the matmul
peak, and the metadata every JSONL record carries (DESIGN.md, "Throughput accounting")."""

from __future__ import annotations

import json
import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
if str(REPO) not in sys.path:  # `python benchmarks/x.py` puts benchmarks/ first, not the repo
    sys.path.insert(0, str(REPO))
import configs  # noqa: E402  (the repo's configs/ package, on sys.path from here on)

# method -> config file benchmarked (its default, full-width variant)
CONFIGS = {"ans": "ans.py", "baseline": "baseline.py", "gan": "gan_gt.py", "mdn": "mdn.py"}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def load_config(method: str, arg: str | None = None, width: int | None = None):
    """``configs/<file>.py`` of ``method``; ``width`` overrides every hidden width."""
    c = configs.get_config(CONFIGS[method].removesuffix(".py"), arg)
    if width and method == "ans":
        c.model.htnet.update(channels=width, hidden=4 * width)  # channels: a multiple of 24
    elif width:
        c.model.width = width
        if method == "gan":
            c.model.latent_dim = width
            c.model.critic_kcs_width = width
    return c


def synthetic_norm(method: str) -> dict:
    """Plausible normalisation statistics (speed does not depend on their values)."""
    if method == "ans":
        return {"res": np.array([1000.0, 1000.0], np.float32), "d_mean": np.float32(0.05)}
    if method == "gan":
        template = np.array(
            [[0.13, -0.02, 0], [-0.13, -0.02, 0], [0.17, 0.52, 0.02], [-0.17, 0.52, 0.02]]
        )
        return {"template": template.astype(np.float32), "p1_scale": np.float32(1.1)}
    rng = np.random.default_rng(0)
    z = lambda shape, m, s: {  # noqa: E731
        "mean": (m + rng.normal(0, s / 10, shape)).astype(np.float32),
        "std": (s * rng.uniform(0.5, 1.5, shape)).astype(np.float32),
    }
    return {"in": z((16, 2), 500.0, 100.0), "out": z((16, 3), 0.0, 200.0)}


def make_method(method: str, config, mesh=None):
    from posejax import methods

    return methods.get(method)(config, mesh=mesh)


def create_state(m, method: str, seed: int = 0):
    """A random-weight state of ``m`` (speed does not depend on the weights)."""
    return jax.jit(m.create_state)(jax.random.key(seed), synthetic_norm(method))


def random_kp2d(batch: int, seed: int = 0) -> np.ndarray:
    """``[B, 17, 2]`` float32 px: a template 2D skeleton with random scale, shift, jitter."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-1, 1, (17, 2))
    scale = rng.uniform(80, 200, (batch, 1, 1))
    shift = rng.uniform(300, 700, (batch, 1, 2))
    jitter = rng.normal(0, 0.15, (batch, 17, 2))
    return ((base + jitter) * scale + shift).astype(np.float32)


def cast_floats(tree, dtype):
    """Every floating leaf of ``tree`` as ``dtype`` (the whole state runs in bf16)."""
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


def flops_of(compiled) -> float:
    """FLOPs of a compiled (or lowered) XLA program from its cost analysis (0 if
    unavailable). A loop body (lax.map, scan) is counted once, not per iteration."""
    ca = compiled.cost_analysis()
    if isinstance(ca, list | tuple):
        ca = ca[0] if ca else {}
    return float((ca or {}).get("flops", 0.0))


def interleaved(
    fns: dict[str, Callable],
    *,
    target_s: float = 2.0,
    min_reps: int = 3,
    max_reps: int = 30,
    budget_s: float = 60.0,
    rounds: int = 3,
    long_s: float = 30.0,
) -> dict[str, dict]:
    """Median seconds per call of each function, measured in ``rounds`` alternating blocks
    (A B C A B C ...) so that load from other processes on a shared machine hits every
    variant alike, while consecutive calls inside a block keep each runtime's thread pool
    awake (switching runtimes on every call makes their spin-waiting threads fight).

    Each function must return only when its work is done (block_until_ready). The first
    call of each is timed as the probe that sets its repeat count
    (``target_s / probe`` within ``[min_reps, max_reps]``, fewer when ``budget_s`` of
    total work would be exceeded; never fewer than 1). Each block starts with one untimed
    call. A function whose probe takes ``long_s`` or more and that gets one repeat is
    measured by its probe alone (cells of minutes). Warm-up (compilation) is the caller's
    job.
    """
    probe = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        probe[name] = time.perf_counter() - t0
    reps = {n: int(min(max_reps, max(min_reps, math.ceil(target_s / p)))) for n, p in probe.items()}
    total = sum(reps[n] * probe[n] for n in fns)
    if total > budget_s:
        f = budget_s / total
        reps = {n: max(1, int(r * f)) for n, r in reps.items()}
    times = {n: [] for n in fns}
    for n in fns:  # a call of minutes: its (warmed-up) probe is its one measurement
        if probe[n] >= long_s and reps[n] == 1:
            times[n].append(probe[n])
            reps[n] = 0
    for r in range(rounds):
        for name, fn in fns.items():
            n = reps[name] * (r + 1) // rounds - reps[name] * r // rounds
            if n == 0:
                continue
            if probe[name] < 1.0:
                fn()  # untimed: wakes this runtime's threads
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {
        n: {"median_s": statistics.median(t), "min_s": min(t), "repeats": len(t)}
        for n, t in times.items()
    }


def matmul_fn(dtype, n: int = 2048):
    """A callable running one jitted ``n x n`` matmul, and its FLOPs (2 n^3)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    f = jax.jit(jnp.dot)
    f(a, a).block_until_ready()
    return (lambda: f(a, a).block_until_ready()), 2.0 * n**3


PEAK_SIZES = (1024, 2048)


def torch_matmul_fn(dtype, n: int = 2048):
    """A callable running one PyTorch ``n x n`` matmul on its default device, and 2 n^3."""
    import torch

    tdt = {jnp.float32: torch.float32, jnp.bfloat16: torch.bfloat16}[dtype]
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(n, n, device=dev).to(tdt)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def call():
        with torch.inference_mode():
            a @ a
        sync()

    call()
    return call, 2.0 * n**3


def matmul_probes(dtype, torch_too: bool = False) -> tuple[dict[str, Callable], dict[str, float]]:
    """``({name: call}, {name: flops})`` of the peak probes: square matmuls of
    ``PEAK_SIZES`` through XLA (``matmul<n>``) and, with ``torch_too``, through PyTorch
    (``torch_matmul<n>``: on a CPU its MKL/oneDNN GEMM can beat XLA's). The device's peak
    is the fastest of them all."""
    calls, flops = {}, {}
    for n in PEAK_SIZES:
        calls[f"matmul{n}"], flops[f"matmul{n}"] = matmul_fn(dtype, n)
        if torch_too:
            calls[f"torch_matmul{n}"], flops[f"torch_matmul{n}"] = torch_matmul_fn(dtype, n)
    return calls, flops


def peak_of(timing: dict, flops: dict, prefix: str = "") -> float:
    """Dense matmul FLOP/s: the best probe of an ``interleaved`` timing (only the probes
    whose name starts with ``prefix``, when given)."""
    return max(f / timing[name]["median_s"] for name, f in flops.items() if name.startswith(prefix))


def matmul_peak(dtype, reps: int = 7) -> float:
    """Dense matmul FLOP/s of the default device (best size, median of ``reps``)."""
    calls, flops = matmul_probes(dtype)
    timing = interleaved(calls, min_reps=reps, max_reps=reps, rounds=1)
    return peak_of(timing, flops)


def commit() -> str:
    def git(*args):
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=REPO
        ).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    return sha + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def meta() -> dict:
    """Device, versions and commit for every record."""
    import flax
    import jaxlib

    dev = jax.devices()[0]
    out = {
        "device_kind": dev.device_kind,
        "platform": dev.platform,
        "num_devices": jax.device_count(),
        "cpu": cpu_model(),
        "host_cores": os.cpu_count(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "python": platform.python_version(),
        "commit": commit(),
        "time": time.time(),
    }
    try:
        import torch

        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
    except ImportError:
        out["torch"] = None
    return out


def start(args, benchmark: str, single_file: str) -> tuple[pathlib.Path, dict]:
    """``(output JSONL path, fields of every record)`` of a benchmark run; raises torch's
    recompile limits when peers run. The output is ``single_file`` for one device with
    peers, else ``scaling.jsonl`` (``--out`` overrides)."""
    if not args.no_peers:
        import torch

        torch._dynamo.config.recompile_limit = 1024
        torch._dynamo.config.accumulated_recompile_limit = 1 << 16
    default = single_file if args.devices == 1 and not args.no_peers else "scaling.jsonl"
    out = pathlib.Path(args.out or RESULTS / default)
    run = args.run or time.strftime("%Y%m%d-%H%M%S")
    return out, {"benchmark": benchmark, "run": run, **meta(), "mesh_devices": args.devices}


def write(path: pathlib.Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def parse_ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x]
