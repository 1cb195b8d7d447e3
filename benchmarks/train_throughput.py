"""Training examples per second: posejax's jitted step vs PyTorch peers, side by side.

  python benchmarks/train_throughput.py                       # full width, all methods
  python benchmarks/train_throughput.py --devices 4 --no_peers

Each method trains at its config's batch size (``train.batch_size``: baseline and mdn 64
examples; gan 128 generator rows = 64 2D inputs x 2 codes, plus the critic update) on
SynthPose held on the device (DESIGN.md rule 1; a small split: speed does not depend on
its size). Variants, timed in alternating blocks (``common.interleaved``), each timed
unit being ``--steps_per_unit`` consecutive steps with one sync at the end (as the
trainer runs), plus the peak matmul probes of ``hypotheses.py``:

* ``posejax``: ``training.trainer.make_train_step`` (one jit, state donated);
* ``torch_eager`` / ``torch_compile``: the peer's step (``benchmarks/peers``): the same
  batch draw, losses, backward and Adam; ``torch.compile`` on the forward/loss (the WSGN
  critic inside the gradient penalty stays eager: compiled graphs have no double
  backward); each also as ``..._1thread`` on a one-thread PyTorch, which a busy shared
  CPU favours.

Compile time is reported separately (posejax: lower + compile; torch: first step minus a
timed step). Before timing, one step of each peer is checked against posejax's step on
the same batch, draws and weights, with dropout off (``peers.api.check_train_step``).
"""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="baseline,gan,mdn")
    p.add_argument("--width", type=int, default=0, help="override hidden widths (0: config)")
    p.add_argument("--peers", default="eager,compile")
    p.add_argument("--no_peers", action="store_true")
    p.add_argument("--devices", type=int, default=1, help="mesh size (fake CPU devices)")
    p.add_argument("--steps_per_unit", type=int, default=5)
    p.add_argument("--target_s", type=float, default=6.0, help="timed seconds per variant")
    p.add_argument("--run", default="")
    p.add_argument("--out", default="")
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.devices > 1:  # before JAX initialises
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={ARGS.devices}"

import jax  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402


def train_config(method, width, dropout=None):
    c = common.load_config(method, width=width or None)
    c.data.via_tfds = False  # generate SynthPose in memory: a small split suffices
    c.data.synthpose.frames_per_sequence = 50
    c.data.synthpose.sequences_per_action = 1
    if dropout is not None and "dropout_rate" in c.model:
        c.model.dropout_rate = dropout
    return c


def posejax_step(method, config, mesh):
    """``(call running k steps, flops per step, compile_s, dataset, method, state)``."""
    from posejax.training import data as data_lib
    from posejax.training import trainer

    m = common.make_method(method, config, mesh)
    train = data_lib.load_split(config, "train", mesh)
    state = jax.jit(m.create_state)(jax.random.key(0), m.data_stats(train.host))
    step = trainer.make_train_step(m, mesh)
    root = jax.random.key(0)
    t0 = time.perf_counter()
    compiled = step.lower(state, train.data, root).compile()
    compile_s = time.perf_counter() - t0
    flops = common.flops_of(compiled)
    holder = {"state": jax.tree.map(lambda x: x.copy(), state)}

    def run(k):
        def call():
            s = holder["state"]
            for _ in range(k):
                s, metrics = compiled(s, train.data, root)
            jax.block_until_ready((s, metrics))
            holder["state"] = s

        return call

    return run, flops, compile_s, train, m, state


def peer_steps(method, config, state, train, kinds, k):
    """``({variant: call running k steps}, {variant: compile_s}, equality)``."""
    import torch

    from benchmarks.peers import api

    eq = check(method, config, train)
    kp, pose = api.to_torch_split(train.host)
    calls, compile_s = {}, {}
    threads = torch.get_num_threads()
    for kind in kinds:
        peer = api.build(method, config, state)
        step = api.train_step(method, config, peer, kp, pose, compile=kind == "compile")

        def call(step=step, n_threads=threads):
            torch.set_num_threads(n_threads)
            for _ in range(k):
                step()
            api.sync()
            torch.set_num_threads(threads)

        t0 = time.perf_counter()
        step()  # compiles
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        step()
        compile_s[f"torch_{kind}"] = max(0.0, first - (time.perf_counter() - t0))
        calls[f"torch_{kind}"] = call
        if threads > 1:  # a busy shared CPU stalls OpenMP barriers; one thread has none
            calls[f"torch_{kind}_1thread"] = functools.partial(call, n_threads=1)
    return calls, compile_s, eq


def check(method, config, train):
    """Train-step equality on this run's widths, with dropout off."""
    from benchmarks.peers import api

    c = train_config(method, config.model.width, dropout=0.0)
    m = common.make_method(method, c)
    state = jax.jit(m.create_state)(jax.random.key(1), m.data_stats(train.host))
    diffs = api.check_train_step(m, state, train, api.build(method, c, state))
    return {"max_rel_diff": max(diffs.values()), "rel_diffs": diffs}


def run_method(method, args, base, out):
    config = train_config(method, args.width)
    from posejax.training import sharding

    mesh = sharding.make_mesh(args.devices)
    run, flops, pj_compile, train, m, state = posejax_step(method, config, mesh)
    k = args.steps_per_unit
    calls, compile_s, eq = {}, {}, None
    if not args.no_peers and args.devices == 1:
        calls, compile_s, eq = peer_steps(method, config, state, train, args.peers.split(","), k)
        print(f"{method}: train step peer vs posejax, max rel diff {eq['max_rel_diff']:.1e}")
    compile_s["posejax"] = pj_compile
    pj = run(k)
    pj()  # warm-up
    mm_calls, mm_flops = common.matmul_probes(jax.numpy.float32, torch_too=bool(calls))
    load_before = os.getloadavg()[0]
    timing = common.interleaved(
        {"posejax": pj, **calls, **mm_calls},
        target_s=args.target_s,
        budget_s=10 * args.target_s,
    )
    bs = config.train.batch_size
    rate = {n: bs * k / t["median_s"] for n, t in timing.items() if n not in mm_calls}
    peak = common.peak_of(timing, mm_flops)
    rec = {**base, "method": method, "width": config.model.width, "dtype": "float32"}
    rec.update(
        batch_size=bs,
        examples_per_s=rate,
        step_s={n: t["median_s"] / k for n, t in timing.items() if n not in mm_calls},
        repeats={n: t["repeats"] for n, t in timing.items()},
        compile_s=compile_s,
        flops_per_step=flops,
        matmul_peak_flops=peak,
        matmul_peak_by_lib={
            lib: common.peak_of(timing, mm_flops, prefix)
            for lib, prefix in (("xla", "matmul"), ("torch", "torch_matmul"))
            if any(n.startswith(prefix) for n in mm_flops)
        },
        flop_util=flops * rate["posejax"] / bs / peak,
        loadavg_1min=[load_before, os.getloadavg()[0]],
    )
    peers = {n: r for n, r in rate.items() if n.startswith("torch")}
    if peers:
        best = max(peers, key=peers.get)
        rec.update(
            equality=eq,
            ratio={n: rate["posejax"] / r for n, r in peers.items()},
            best_peer=best,
            ratio_best=rate["posejax"] / peers[best],
        )
    common.write(out, rec)
    rates = " ".join(f"{n}={r:,.0f}" for n, r in rate.items())
    ratio = f"; posejax/best={rec['ratio_best']:.2f} ({best})" if peers else ""
    print(
        f"{method} batch {bs}: {rates} examples/s; compile {compile_s}; "
        f"util {rec['flop_util']:.0%}{ratio}",
        flush=True,
    )


def main(args):
    out, base = common.start(args, "train", "train_throughput.jsonl")
    for method in args.methods.split(","):
        run_method(method, args, base, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(ARGS)
