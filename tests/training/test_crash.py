"""Crash faults: ``python -m posejax.train`` SIGKILLed at seeded random points (some while a
checkpoint is being written), resumed after each kill until it completes, ends bit-equal
to an uninterrupted run, and leaves no step directory that fails verification."""

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from posejax.training import checkpoint as ckpt_lib
from posejax.training import integrity, sharding, trainer
from posejax.training import workdir as workdir_lib
from tests import helpers

REPO = helpers.REPO
NUM_STEPS = 30
KILLS = 5
OVERRIDES = {
    "num_steps": NUM_STEPS,
    "ckpt_every": 1,
    "eval_every": NUM_STEPS,
    "log_every": 5,
}
RUN_TIMEOUT_S = 120  # one process, start to kill or to the end


def load_config():
    config = helpers.load_config("baseline")
    for key, value in OVERRIDES.items():
        config.train[key] = value
    return config


def committed_steps(ckpt_dir: pathlib.Path) -> list[int]:
    try:
        return sorted(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit())
    except FileNotFoundError:
        return []


def start(workdir, log_path):
    cmd = [
        sys.executable,
        "-m",
        "posejax.train",
        "--config=configs/baseline.py:smoke",
        f"--workdir={workdir}",
        *(f"--config.train.{k}={v}" for k, v in OVERRIDES.items()),
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    log = open(log_path, "w")  # a file, not a pipe: a pipe nobody reads can block the run
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    return proc


def kill_when(proc, ckpt_dir, target, mode, delay):
    """SIGKILLs ``proc`` once step ``target`` is being written (``mode='writing'``: its Orbax
    temporary directory exists) or committed plus ``delay`` s; False if it ended first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    # A temporary directory a killed run left (same name, no timestamp) is no new write.
    old = {(p.name, p.stat().st_ino) for p in integrity.temporary_dirs(ckpt_dir)}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if mode == "writing":
            hit = any(
                integrity.step_of(p) >= target and (p.name, _ino(p)) not in old
                for p in integrity.temporary_dirs(ckpt_dir)
            )
        else:
            hit = any(s >= target for s in committed_steps(ckpt_dir))
        if hit:
            if mode != "writing":
                time.sleep(delay)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return True
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    raise AssertionError(f"no progress to step {target} within {RUN_TIMEOUT_S} s")


def _ino(path):
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def full_state(workdir):
    restored = workdir_lib.restore(workdir, mesh=sharding.make_mesh(1), step=NUM_STEPS)
    state, step = restored.state, restored.step
    assert step == NUM_STEPS
    return jax.tree.map(np.asarray, state)


def test_sigkill_and_resume_until_done_equals_uninterrupted(tmp_path):
    rng = random.Random(0)
    wd = tmp_path / "crashed"
    ckpt_dir = wd / "checkpoints"
    events, resumes, logs = [], [], []
    t0 = time.monotonic()
    for attempt in range(KILLS + 1):
        log_path = tmp_path / f"run{attempt}.log"
        logs.append(log_path)
        if attempt:  # where the trainer will resume: the newest step that verifies
            reader = ckpt_lib.Checkpointer(wd, read_only=True)
            resumes.append(reader.latest_good_step())
            reader.close()
        proc = start(wd, log_path)
        if attempt == KILLS:  # the last run goes to the end
            assert proc.wait(timeout=RUN_TIMEOUT_S) == 0, log_path.read_text()[-3000:]
            break
        mode = rng.choice(["writing", "committed"])
        base = max(committed_steps(ckpt_dir), default=0)
        target, delay = base + rng.randint(1, 3), rng.uniform(0.0, 0.05)
        killed = kill_when(proc, ckpt_dir, target, mode, delay)
        assert killed, f"run {attempt} ended before its kill: raise NUM_STEPS\n{events}"
        left = [p.name for p in integrity.temporary_dirs(ckpt_dir)]
        events.append(
            f"kill {attempt + 1}: {mode} step {target}"
            + (f" (+{delay * 1000:.0f} ms)" if mode == "committed" else "")
            + f", left {committed_steps(ckpt_dir)} tmp {left}"
        )
    for log_path in logs[1:]:
        events += [line for line in log_path.read_text().splitlines() if "set aside as" in line]
    report = "\n".join(
        [f"{KILLS} kills, resume steps {resumes}, {time.monotonic() - t0:.0f} s", *events]
    )
    print(report)

    # Nothing left behind that fails verification, except what was set aside.
    assert not integrity.temporary_dirs(ckpt_dir), report
    for step in committed_steps(ckpt_dir):
        verdict = integrity.verify(ckpt_dir / str(step))
        assert verdict.ok and verdict.has_manifest, f"{verdict}\n{report}"
    assert NUM_STEPS in committed_steps(ckpt_dir), report
    assert all(r is None or 0 < r < NUM_STEPS for r in resumes), report
    assert any(r is not None for r in resumes), report

    trainer.run(load_config(), tmp_path / "straight")
    a, b = full_state(tmp_path / "straight"), full_state(wd)
    jax.tree.map(np.testing.assert_array_equal, a, b)
