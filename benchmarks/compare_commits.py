"""Old commit vs new commit: training examples/s and hypotheses/s, alternated in one run.

  python benchmarks/compare_commits.py --old /path/to/old-checkout --new /path/to/new-checkout \\
      --rounds 3 --wait_for pytest

Runs each checkout's own ``benchmarks/train_throughput.py`` and ``benchmarks/hypotheses.py``
(posejax only: ``--no_peers``) as a subprocess with ``PYTHONPATH=<checkout>`` and
``cwd=<checkout>``, so each side imports its own ``posejax`` and ``configs``. Order per
round: train old, train new, hypotheses old, hypotheses new; ``--rounds`` rounds, so load
from other processes on a shared machine hits both sides alike. Each subprocess writes
to a temporary JSONL; the posejax figures (training examples/s per method, hypotheses/s
per ``method dtype BxS`` cell) are collected. Appends to ``--out`` one record per
measurement and one summary record per cell (median over rounds of each side, new/old
ratio of the medians, the median of the per-round paired ratios, pass against
``--threshold``), and prints the table.

``--wait_for PATTERN`` polls ``pgrep -f PATTERN`` before every subprocess and waits (up
to ``--wait_max_s`` each time, ``--wait_total_s`` in all) while a match runs, and polls
again every ``--poll_s`` while the subprocess runs; a measurement that saw a match
(before, during or right after) is ``polluted``, and its old/new pair is rerun (up to
``--retries`` times; the discarded pair stays in ``--out`` as ``measurement_discarded``).
This script itself imports no JAX: versions and device come from the subprocesses'
records.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
META_KEYS = ("jax", "jaxlib", "flax", "device_kind", "platform", "cpu", "host_cores")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="checkout of the old commit")
    p.add_argument("--new", required=True, help="checkout of the new commit")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train_methods", default="baseline,gan,mdn", help="'' to skip")
    p.add_argument("--hyp_methods", default="gan,mdn", help="'' to skip")
    p.add_argument("--batches", default="64")
    p.add_argument("--samples", default="200")
    p.add_argument("--dtypes", default="float32")
    p.add_argument("--train_target_s", type=float, default=3.0)
    p.add_argument("--hyp_target_s", type=float, default=2.0)
    p.add_argument("--hyp_budget_s", type=float, default=20.0)
    p.add_argument("--threshold", type=float, default=0.97, help="new/old pass mark")
    p.add_argument("--wait_for", default="", help="pgrep -f pattern to wait out ('' none)")
    p.add_argument("--wait_max_s", type=float, default=600.0)
    p.add_argument("--wait_poll_s", type=float, default=30.0)
    p.add_argument("--wait_total_s", type=float, default=900.0, help="cap on all waits")
    p.add_argument("--poll_s", type=float, default=2.0, help="--wait_for poll during a run")
    p.add_argument("--retries", type=int, default=2,
                   help="reruns of an old/new pair that a --wait_for process polluted")  # fmt: skip
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--run", default="", help="run label (default: a timestamp)")
    p.add_argument("--out", default=str(RESULTS / "compare_commits.jsonl"))
    return p.parse_args(argv)


def git_short(d: pathlib.Path) -> str:
    r = subprocess.run(
        ["git", "-C", str(d), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return r.stdout.strip() or "unknown"


def others_running(pattern: str) -> list[str]:
    """Command lines of processes matching ``pattern`` (not this one, nor pgrep)."""
    if not pattern:
        return []
    r = subprocess.run(["pgrep", "-fa", pattern], capture_output=True, text=True)
    me = {str(os.getpid())}
    return [
        line
        for line in r.stdout.splitlines()
        if line.split(" ", 1)[0] not in me and "compare_commits" not in line
    ]


WAITED = [0.0]  # seconds waited so far in this run


def wait_quiet(args) -> dict:
    """Wait while ``--wait_for`` matches (at most ``--wait_max_s`` each time and
    ``--wait_total_s`` in all); returns what was seen."""
    t0 = time.time()
    seen = others_running(args.wait_for)
    first = bool(seen)
    limit = min(args.wait_max_s, args.wait_total_s - WAITED[0])
    while seen and time.time() - t0 < limit:
        print(f"  waiting: {len(seen)} '{args.wait_for}' process(es) running", flush=True)
        time.sleep(args.wait_poll_s)
        seen = others_running(args.wait_for)
    WAITED[0] += time.time() - t0
    return {
        "busy_before_wait": first,
        "waited_s": round(time.time() - t0, 1),
        "loaded": bool(seen),
        "loadavg_at_start": os.getloadavg()[0],
    }


def bench_cmd(args, bench: str, out: pathlib.Path, label: str) -> list[str]:
    if bench == "train":
        extra = ["--methods", args.train_methods, "--target_s", str(args.train_target_s)]
        script = "benchmarks/train_throughput.py"
    else:
        script = "benchmarks/hypotheses.py"
        extra = [
            "--methods", args.hyp_methods, "--batches", args.batches,
            "--samples", args.samples, "--dtypes", args.dtypes, "--extra", "",
            "--target_s", str(args.hyp_target_s), "--budget_s", str(args.hyp_budget_s),
        ]  # fmt: skip
    return [args.python, script, "--no_peers", *extra, "--run", label, "--out", str(out)]


def collect(bench: str, path: pathlib.Path) -> list[dict]:
    """``[{cell, value, unit, loadavg_1min, meta...}]`` of the posejax variant."""
    rows = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if bench == "train":
            cell, value, unit = f"train {r['method']}", r["examples_per_s"]["posejax"], "ex/s"
        elif "hyps_per_s" in r:
            cell = f"hyp {r['method']} {r['dtype']} B={r['B']} S={r['S']}"
            value, unit = r["hyps_per_s"]["posejax"], "hyp/s"
        else:
            continue  # matmul_peak / skipped records
        rows.append(
            {
                "cell": cell,
                "value": value,
                "unit": unit,
                "loadavg_1min": r.get("loadavg_1min"),
                "matmul_peak_flops": r.get("matmul_peak_flops"),
                "compile_s": (r.get("compile_s") or {}).get("posejax"),
                # XLA cost analysis of the compiled step / sample: equal on both sides when
                # the refactor left the computation unchanged
                "flops": r.get("flops_per_step", r.get("flops_per_hyp")),
                "record_commit": r.get("commit"),
                "jax": r.get("jax"),
                "jaxlib": r.get("jaxlib"),
                "flax": r.get("flax"),
                "device_kind": r.get("device_kind"),
                "platform": r.get("platform"),
                "cpu": r.get("cpu"),
                "host_cores": r.get("host_cores"),
            }
        )
    return rows


def run_one(args, side, checkout, bench, label, tmp) -> tuple[list[dict], dict, float]:
    out = pathlib.Path(tmp) / f"{label}-{side}-{bench}.jsonl"
    out.unlink(missing_ok=True)
    cmd = bench_cmd(args, bench, out, label)
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    quiet = wait_quiet(args)
    during = False
    t0 = time.perf_counter()
    p = subprocess.Popen(
        cmd, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    while True:  # poll for --wait_for processes while the benchmark runs
        try:
            log, _ = p.communicate(timeout=args.poll_s)
            break
        except subprocess.TimeoutExpired:
            during = during or bool(others_running(args.wait_for))
    wall = time.perf_counter() - t0
    if p.returncode or not out.exists():
        sys.stderr.write(log[-8000:])
        raise SystemExit(f"{side} {bench} failed (rc {p.returncode}): {' '.join(cmd)}")
    quiet["loaded_during"] = during
    quiet["loaded_after"] = bool(others_running(args.wait_for))
    quiet["polluted"] = quiet["loaded"] or during or quiet["loaded_after"]
    return collect(bench, out), quiet, wall


def summarise(meas: list[dict], threshold: float) -> list[dict]:
    cells = list(dict.fromkeys(m["cell"] for m in meas))
    out = []
    for cell in cells:
        by = {
            s: {m["round"]: m["value"] for m in meas if m["cell"] == cell and m["side"] == s}
            for s in ("old", "new")
        }
        old, new = statistics.median(by["old"].values()), statistics.median(by["new"].values())
        paired = [by["new"][r] / by["old"][r] for r in by["old"] if r in by["new"]]
        out.append(
            {
                "cell": cell,
                "unit": next(m["unit"] for m in meas if m["cell"] == cell),
                "old_median": old,
                "new_median": new,
                "ratio": new / old,
                "paired_ratio_median": statistics.median(paired),
                "paired_ratios": paired,
                "old_values": list(by["old"].values()),
                "new_values": list(by["new"].values()),
                "rounds": min(len(by["old"]), len(by["new"])),
                "pass": new / old >= threshold,
                "any_polluted": any(m["polluted"] for m in meas if m["cell"] == cell),
                "flops": {
                    s: next(
                        (m.get("flops") for m in meas if m["cell"] == cell and m["side"] == s), None
                    )
                    for s in ("old", "new")
                },
            }
        )
    return out


def main(args):
    old, new = pathlib.Path(args.old).resolve(), pathlib.Path(args.new).resolve()
    sides = {"old": old, "new": new}
    commits = {s: git_short(d) for s, d in sides.items()}
    run = args.run or time.strftime("%Y%m%d-%H%M%S")
    benches = [b for b, m in (("train", args.train_methods), ("hyp", args.hyp_methods)) if m]
    outp = pathlib.Path(args.out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    print(f"old {commits['old']} ({old})  new {commits['new']} ({new})  run {run}", flush=True)
    meas, meta = [], {}
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp, outp.open("a") as f:
        for r in range(args.rounds):
            for bench in benches:
                for attempt in range(args.retries + 1):
                    pair = []
                    for side in ("old", "new"):
                        rows, quiet, wall = run_one(args, side, sides[side], bench, run, tmp)
                        for row in rows:
                            meta = {k: row[k] for k in META_KEYS}
                            pair.append(
                                {
                                    "benchmark": "compare_commits",
                                    "kind": "measurement",
                                    "run": run,
                                    "round": r,
                                    "attempt": attempt,
                                    "side": side,
                                    "commit": commits[side],
                                    "checkout": str(sides[side]),
                                    "subprocess_wall_s": round(wall, 1),
                                    **quiet,
                                    **row,
                                    "time": time.time(),
                                }
                            )
                    polluted = any(m["polluted"] for m in pair)
                    # rerun only while waiting is still allowed (else it would be loaded too)
                    can_wait = WAITED[0] < args.wait_total_s
                    retry = polluted and attempt < args.retries and can_wait
                    for m in pair:
                        if retry:
                            m["kind"] = "measurement_discarded"  # kept for the record
                        else:
                            meas.append(m)
                        f.write(json.dumps(m) + "\n")
                        f.flush()
                        print(
                            f"round {r} {m['side']} {m['commit']} {m['cell']}: "
                            f"{m['value']:,.0f} {m['unit']} (load {m['loadavg_1min']}, "
                            f"polluted={m['polluted']}{', discarded' if retry else ''})",
                            flush=True,
                        )
                    if not retry:
                        break
        summary = summarise(meas, args.threshold)
        common = {
            "benchmark": "compare_commits",
            "kind": "summary",
            "run": run,
            "old_commit": commits["old"],
            "new_commit": commits["new"],
            "argv": sys.argv[1:],
            "threshold": args.threshold,
            "total_wall_s": round(time.time() - t_start, 1),
            **meta,
            "time": time.time(),
        }
        for s in summary:
            f.write(json.dumps({**common, **s}) + "\n")
    print(
        f"\nold {commits['old']} vs new {commits['new']}; jax {meta.get('jax')}, "
        f"{meta.get('device_kind')} ({meta.get('cpu')}, {meta.get('host_cores')} cores)"
    )
    print(f"| cell | old | new | new/old | paired median | rounds | >= {args.threshold:.2f} |")
    print("|---|---|---|---|---|---|---|")
    for s in summary:
        print(
            f"| {s['cell']} ({s['unit']}) | {s['old_median']:,.0f} | {s['new_median']:,.0f} | "
            f"{s['ratio']:.3f} | {s['paired_ratio_median']:.3f} | {s['rounds']} | "
            f"{'yes' if s['pass'] else 'NO'} |"
        )
    print(f"wrote {outp}")


if __name__ == "__main__":
    main(parse_args())
