"""Metric writers: JSONL in the workdir (what tools parse), console, TensorBoard."""

from __future__ import annotations

import json
import math
import pathlib
import sys
import time


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class MetricWriter:
    """Writes scalar dicts to ``metrics.jsonl``, TensorBoard (``tb/``) and the console."""

    def __init__(self, workdir, *, tensorboard: bool = True, console: bool = True):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.workdir / "metrics.jsonl", "a", buffering=1)  # noqa: SIM115
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(self.workdir / "tb"))
        self.console = console

    def write(self, step: int, scalars: dict, line: str | None = None):
        record = {"step": int(step), "time": time.time()}
        record.update({k: float(v) for k, v in scalars.items()})
        self._jsonl.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, float(v), int(step))
        if self.console and line:
            print(line, file=sys.stderr, flush=True)

    def close(self):
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


class NullWriter:
    """``MetricWriter`` 's interface, writing nothing (non-primary processes)."""

    def write(self, step: int, scalars: dict, line: str | None = None):
        del step, scalars, line

    def close(self):
        pass


class Throughput:
    """Steps/s, examples/s and ETA between log steps (excludes the compile step)."""

    def __init__(self, total_steps: int, batch_size: int, start_step: int):
        self.total, self.batch = total_steps, batch_size
        self.t0, self.s0 = None, start_step

    def start(self, step: int):
        self.t0, self.s0 = time.perf_counter(), step

    def rates(self, step: int) -> dict:
        if self.t0 is None or step <= self.s0:
            return {"steps_per_sec": float("nan"), "examples_per_sec": float("nan")}
        sps = (step - self.s0) / (time.perf_counter() - self.t0)
        return {"steps_per_sec": sps, "examples_per_sec": sps * self.batch}

    def eta(self, step: int) -> float:
        sps = self.rates(step)["steps_per_sec"]
        return (self.total - step) / sps if sps and math.isfinite(sps) else float("nan")
