"""Hypotheses per second at inference: posejax vs PyTorch peers, one run, side by side.

  python benchmarks/hypotheses.py                          # full grid, all methods
  python benchmarks/hypotheses.py --width 128 --max_rows 0 # small widths, no row cap
  python benchmarks/hypotheses.py --devices 4 --no_peers   # 4 (fake CPU) devices

For each method (its config's default, full-width network unless ``--width``), each
dtype, batch B and hypotheses S: 2D keypoints ``[B, 17, 2]`` px on the device in,
``[B, S, 17, 3]`` mm out. Variants, timed in alternating blocks after warm-up (median):

* ``posejax``: ``jax.jit(method.sample)`` on a ``create_state`` state (random weights),
  prepared as ``posejax.inference`` prepares a checkpoint (``method.for_inference``:
  max-norm folded into the weights; the peers get the same folded weights);
* ``torch_eager`` / ``torch_compile``: the peer's batched sample (``benchmarks/peers``),
  eager and ``torch.compile(dynamic=False)``, in ``torch.inference_mode``;
* ``torch_loop``: the official code's way, one forward pass per hypothesis;
* each of these also as ``..._1thread`` on a one-thread PyTorch (on a shared, busy CPU
  host OpenMP barriers stall on descheduled threads; one thread has none);
* ``matmul1024`` / ``matmul2048`` (XLA) and ``torch_matmul1024`` / ``torch_matmul2048``
  (PyTorch, with peers): square matmuls of the same dtype, the peak probes interleaved
  with the cell so that they see the same load from other processes. The peak is the
  fastest of them: the device's dense matmul rate, whichever library reaches it (on this
  repository's CPU host PyTorch's GEMM ran ~25% above XLA's; both are recorded in
  ``matmul_peak_by_lib``).

Single-hypothesis methods (baseline) run S = 1 only. FLOPs per hypothesis come from XLA's
cost analysis of the compiled sample; FLOP utilisation = FLOPs/hypothesis x hypotheses/s /
matmul FLOP/s. Before the grid, the peer's output is checked against posejax's on shared
weights and draws (``peers.api.check_equal``). Cells above ``--max_rows`` B x S rows
(``--max_rows_bf16`` in bf16) are skipped and recorded as skipped. One JSONL record per
cell to ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="baseline,gan,mdn")
    p.add_argument("--batches", default="1,64,1024")
    p.add_argument("--samples", default="1,10,200,1000")
    p.add_argument("--extra", default="baseline:16384x1,mdn:16384x1",
                   help="extra method:BxS cells (large-batch cells for methods whose "
                   "hypotheses add no network rows)")  # fmt: skip
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--width", type=int, default=0, help="override hidden widths (0: config)")
    p.add_argument("--max_rows", type=int, default=65536, help="skip B*S above (0: no cap)")
    p.add_argument("--max_rows_bf16", type=int, default=16384)
    p.add_argument("--peers", default="eager,compile,loop")
    p.add_argument("--no_peers", action="store_true")
    p.add_argument("--devices", type=int, default=1, help="mesh size (fake CPU devices)")
    p.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="untimed calls per variant after compiling (1 for cells of minutes)",
    )
    p.add_argument(
        "--threads",
        default="both",
        choices=("both", "all", "one"),
        help="PyTorch thread variants: all cores, one thread (_1thread), or both",
    )
    p.add_argument("--target_s", type=float, default=2.0, help="timed seconds per variant")
    p.add_argument("--budget_s", type=float, default=90.0, help="timed seconds per cell")
    p.add_argument("--run", default="", help="run label (default: a timestamp)")
    p.add_argument("--out", default="")
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.devices > 1:  # before JAX initialises
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={ARGS.devices}"

import jax  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # noqa: E402


def grid(method, args):
    """``(B, S)`` cells of ``method``: S = 1 only where the method draws no hypotheses."""
    multi = common.make_method(method, common.load_config(method, "smoke")).multi_hypothesis
    ss = common.parse_ints(args.samples) if multi else [1]
    cells = [(b, s) for b in common.parse_ints(args.batches) for s in ss]
    for item in filter(None, args.extra.split(",")):
        name, cell = item.split(":")
        b, s = (int(v) for v in cell.split("x"))
        if name == method and (b, s) not in cells:
            cells.append((b, s))
    return cells


def for_inference(m, state):
    """What ``posejax.inference`` runs: max-norm folded into the weights where the method
    has one (``BaselineMethod.for_inference``). The peers get the folded weights and
    config too, so both sides compute the same function the same way."""
    return m.for_inference(state)  # every method has it (methods/base.py; default: as is)


class Posejax:
    """The jitted sample of one method on a (possibly sharded) state."""

    def __init__(self, method, config, dtype, mesh, warmup=2):
        self.warmup = warmup
        m = common.make_method(method, config, mesh)
        self.m, self.state_f32 = for_inference(m, common.create_state(m, method))
        state = self.state_f32
        self.dtype = common.DTYPES[dtype]
        self.state = common.cast_floats(state, self.dtype)
        self.mesh = mesh
        if mesh is not None:
            self.state = jax.device_put(self.state, NamedSharding(mesh, PartitionSpec()))
        self.fn = jax.jit(self.m.sample, static_argnums=3)
        self.key = jax.random.key(0)
        # XLA's cost analysis counts a loop body once, so a sample that lifts in chunks
        # (ans: lax.map over model.lift_chunk rows) is costed unchunked (lowered only).
        self.flops_fn = self.fn
        if "lift_chunk" in self.m.config.model:
            flat = copy.deepcopy(self.m.config)
            flat.model.lift_chunk = 0
            flat_m, _ = for_inference(common.make_method(method, flat, mesh), state)
            self.flops_fn = jax.jit(flat_m.sample, static_argnums=3)

    def inputs(self, b):
        kp = common.random_kp2d(b).astype(self.dtype)
        if self.mesh is None:
            return jax.device_put(kp)
        return jax.device_put(kp, NamedSharding(self.mesh, PartitionSpec("data")))

    def cell(self, b, s):
        """``(call, flops, compile_s)`` for one cell, warmed up."""
        kp = self.inputs(b)
        t0 = time.perf_counter()
        compiled = self.fn.lower(self.state, kp, self.key, s).compile()
        compile_s = time.perf_counter() - t0
        if self.flops_fn is self.fn:
            flops = common.flops_of(compiled)
        else:
            flops = common.flops_of(self.flops_fn.lower(self.state, kp, self.key, s))
        call = lambda: compiled(self.state, kp, self.key).block_until_ready()  # noqa: E731
        for _ in range(self.warmup):
            call()
        return call, flops, compile_s


class Peer:
    """The PyTorch peer of one method in one dtype: eager, compiled and loop callables."""

    def __init__(self, method, config, state_f32, dtype, kinds, warmup=2, threads="both"):
        import torch

        from benchmarks.peers import api

        self.torch, self.api, self.kinds = torch, api, kinds
        self.warmup, self.threads = warmup, threads
        self.dtype = api.TORCH_DTYPES[dtype]
        self.peer = api.build(method, config, state_f32).to(self.dtype)
        self.sample = api.sample_fn(method, self.peer)
        self.loop = api.loop_fn(method, self.peer)
        self.compiled = torch.compile(self.sample, dynamic=False)

    def cell(self, b, s):
        """``({variant: call}, {variant: compile_s})`` for one cell, warmed up."""
        torch, sync = self.torch, self.api.sync
        kp = torch.from_numpy(common.random_kp2d(b)).to(self.api.device(), self.dtype)

        threads = torch.get_num_threads()

        def run(fn, num_threads):
            def call():
                torch.set_num_threads(num_threads)
                with torch.inference_mode():
                    fn(kp, s)
                sync()
                torch.set_num_threads(threads)

            return call

        fns = {"eager": self.sample, "compile": self.compiled}
        if self.loop is not None and s > 1:
            fns["loop"] = self.loop
        calls, compile_s = {}, {}
        for kind, fn in fns.items():
            if kind not in self.kinds:
                continue
            if self.threads != "one" or threads == 1:
                calls[f"torch_{kind}"] = run(fn, threads)
            if threads > 1 and self.threads != "all":
                # a busy shared CPU stalls OpenMP barriers; one thread has none
                calls[f"torch_{kind}_1thread"] = run(fn, 1)
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()  # the first call compiles (torch.compile) and counts as a warm-up call
            compile_s[name] = time.perf_counter() - t0
            for _ in range(self.warmup - 1):
                call()
        return calls, compile_s


def skip_reason(b, s, dtype, args):
    cap = args.max_rows_bf16 if dtype == "bfloat16" else args.max_rows
    if cap and b * s > cap:
        return f"B*S = {b * s} rows > cap {cap} ({dtype}) on this device"
    if b % args.devices:
        return f"B = {b} does not divide over {args.devices} devices"
    return None


def equality(method, config, args):
    """Max |posejax - peer| mm on shared weights and draws (float32, B = 4, S = 5)."""
    from benchmarks.peers import api

    m = common.make_method(method, config)
    m, state = for_inference(m, common.create_state(m, method))
    peer = api.build(method, m.config, state)
    diff, scale = api.check_equal(m, state, peer, common.random_kp2d(4, seed=1), 5)
    return {"max_abs_diff_mm": diff, "max_abs_mm": scale, "rel_diff": diff / scale}


def run_cell(pj, peer, b, s, args):
    """Times every variant of one cell; returns the record fields."""
    pj_call, flops, pj_compile = pj.cell(b, s)
    calls, compile_s = peer.cell(b, s) if peer else ({}, {})
    compile_s["posejax"] = pj_compile
    mm_calls, mm_flops = common.matmul_probes(pj.dtype, torch_too=peer is not None)
    load_before = os.getloadavg()[0]
    timing = common.interleaved(
        {"posejax": pj_call, **calls, **mm_calls},
        target_s=args.target_s,
        budget_s=args.budget_s,
    )
    rate = {k: b * s / v["median_s"] for k, v in timing.items() if k not in mm_calls}
    peak = common.peak_of(timing, mm_flops)
    per_hyp = flops / (b * s)
    rec = {
        "B": b,
        "S": s,
        "rows": b * s,
        "hyps_per_s": rate,
        "seconds": {k: v["median_s"] for k, v in timing.items()},
        "repeats": {k: v["repeats"] for k, v in timing.items()},
        "compile_s": compile_s,
        "flops_per_hyp": per_hyp,
        "matmul_peak_flops": peak,
        "matmul_peak_by_lib": {
            lib: common.peak_of(timing, mm_flops, prefix)
            for lib, prefix in (("xla", "matmul"), ("torch", "torch_matmul"))
            if any(n.startswith(prefix) for n in mm_flops)
        },
        "flop_util": per_hyp * rate["posejax"] / peak,
        "loadavg_1min": [load_before, os.getloadavg()[0]],  # other processes on the host
    }
    peers_ = {k: v for k, v in rate.items() if k.startswith("torch")}
    if peers_:
        rec["ratio"] = {k: rate["posejax"] / v for k, v in peers_.items()}
        best = max(peers_, key=peers_.get)
        rec["best_peer"], rec["ratio_best"] = best, rate["posejax"] / peers_[best]
    return rec


def run_method(method, args, base, out):
    config = common.load_config(method, width=args.width or None)
    mesh = None
    if args.devices > 1:
        from posejax.training import sharding

        mesh = sharding.make_mesh(args.devices)
    use_peers = not args.no_peers and args.devices == 1
    width = config.model.htnet.channels if method == "ans" else config.model.width
    base = {**base, "method": method, "width": width}
    if use_peers:
        base["equality"] = equality(method, config, args)
        print(f"{method}: peer vs posejax {base['equality']}", flush=True)
    for dtype in args.dtypes.split(","):
        pj = Posejax(method, config, dtype, mesh, warmup=args.warmup)
        peer = None
        if use_peers:
            peer = Peer(method, pj.m.config, pj.state_f32, dtype, args.peers.split(","),
                        warmup=args.warmup, threads=args.threads)  # fmt: skip
        for b, s in grid(method, args):
            rec = {**base, "dtype": dtype, "B": b, "S": s}
            reason = skip_reason(b, s, dtype, args)
            if reason:
                common.write(out, {**rec, "skipped": reason})
                print(f"{method} {dtype} B={b} S={s}: skipped ({reason})", flush=True)
                continue
            rec.update(run_cell(pj, peer, b, s, args))
            common.write(out, rec)
            print_cell(method, dtype, rec)


def print_cell(method, dtype, r):
    rates = " ".join(f"{k}={v:,.0f}" for k, v in r["hyps_per_s"].items())
    ratio = f" posejax/best={r['ratio_best']:.2f} ({r['best_peer']})" if "ratio_best" in r else ""
    print(
        f"{method} {dtype} B={r['B']} S={r['S']}: {rates} hyp/s; "
        f"{r['flops_per_hyp'] / 1e6:.2f} MFLOP/hyp, util {r['flop_util']:.0%} of "
        f"{r['matmul_peak_flops'] / 1e9:.0f} GFLOP/s{ratio}",
        flush=True,
    )


def main(args):
    out, base = common.start(args, "hypotheses", "hypotheses.jsonl")
    for dtype in args.dtypes.split(","):
        peak = common.matmul_peak(common.DTYPES[dtype])
        common.write(out, {**base, "kind": "matmul_peak", "dtype": dtype, "flops": peak})
        print(f"matmul peak {dtype}: {peak / 1e9:.1f} GFLOP/s", flush=True)
    for method in args.methods.split(","):
        run_method(method, args, base, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(ARGS)
