"""The generic trainer: mesh, data on the devices, state created or restored, one jitted
step, periodic logging / evaluation / checkpointing (DESIGN.md, "The step contract").

A run that dies resumes from the workdir's latest checkpoint: step keys are
``fold_in(root, step)``, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib
import subprocess

import jax
import numpy as np
import tqdm

from posejax import methods
from posejax.methods import base
from posejax.training import checkpoint as ckpt_lib
from posejax.training import data as data_lib
from posejax.training import distributed, evaluation, feeds, lock, sharding, writers
from posejax.training import workdir as workdir_lib

log = logging.getLogger("posejax")

REQUIRED_SECTIONS = (
    "method",
    "seed",
    "data",
    "model",
    "loss",
    "optim",
    "schedule",
    "train",
    "eval",
    "mesh",
    "init_from",
)


def validate_config(config) -> None:
    missing = [s for s in REQUIRED_SECTIONS if s not in config]
    if missing:
        raise KeyError(f"config lacks sections {missing}; every config has {REQUIRED_SECTIONS}")
    methods.get(config.method)
    t = config.train
    for key in ("num_steps", "batch_size", "log_every", "eval_every", "ckpt_every"):
        if int(t[key]) < 1:
            raise ValueError(f"train.{key} must be >= 1, found {t[key]}")


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=pathlib.Path(__file__).parent,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_config(config, workdir: pathlib.Path) -> None:
    text = config.to_json_best_effort(indent=2, sort_keys=True)
    (workdir / "config.json").write_text(text + "\n")
    log.info("config:\n%s", text)


class Run:
    """Everything one training run holds; built by ``setup``, driven by ``run``."""

    def __init__(self, config, workdir):
        validate_config(config)
        self.config = config
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if distributed.is_primary():
            write_config(config, self.workdir)
        self.mesh = sharding.make_mesh(config.mesh.data)
        sharding.check_batch(config.train.batch_size, self.mesh)
        self.method = methods.get(config.method)(config, mesh=self.mesh)
        self.train = data_lib.load_split(config, config.data.train_split, self.mesh)
        self.feed = feeds.make_train_feed(config, self.train, self.mesh, self.method)
        self.test = data_lib.load_split(
            config,
            config.data.test_split,
            self.mesh,
            stride=config.eval.stride,
            pad_to=config.eval.batch_size,
        )
        self.ckpt = ckpt_lib.Checkpointer(
            self.workdir, keep=config.train.keep, best_metric=config.eval.best_metric
        )
        self.root = jax.random.key(config.seed)
        self.state = self._initial_state()

    def _initial_state(self):
        cfg, repl = self.config, sharding.replicated(self.mesh)
        norm = self.method.data_stats(self.train.host)
        create = jax.jit(self.method.create_state, out_shardings=repl)
        state = create(jax.random.fold_in(self.root, 2**31 - 1), norm)
        abstract = ckpt_lib.abstract_state(state, repl)
        step = self.ckpt.latest_good_step(set_aside=True)
        if step is not None:
            log.info("resuming from %s/checkpoints/%d", self.workdir, step)
            restored = self.ckpt.restore(abstract, step, expect_method=cfg.method)
            # The loader's iterator state of that step: the next batch is the one an
            # uninterrupted run would have drawn.
            self.feed.set_state(self.ckpt.read_meta(step).get("feed_state"))
            return restored
        init = init_spec(cfg)
        if init["workdir"]:
            state = self._init_from(state, **init)
        return self.method.prepare_state(state, self.train)

    def _init_from(self, state, workdir, networks, step):
        """Staged initialisation: the source run's method is rebuilt from its own
        ``config.json``; ``method.init_networks`` copies the named networks (default: every
        network both methods have)."""
        src = workdir_lib.restore(workdir, mesh=self.mesh, step=step)
        names = tuple(networks) or tuple(
            n for n in self.method.networks if n in src.method.networks
        )
        if not names:
            raise ValueError(
                f"init_from: {workdir} (method {src.method.name!r}, networks "
                f"{list(src.method.networks)}) shares no network with method "
                f"{self.method.name!r} ({list(self.method.networks)}); name them in "
                "init_from.networks"
            )
        log.info("initialising %s from %s step %d (method %s)", list(names), workdir, src.step,
                 src.method.name)  # fmt: skip
        source = base.Source(src.method, src.state, src.workdir, src.step)
        return self.method.init_networks(state, source, names)

    def meta(self) -> dict:
        return {
            "method": self.config.method,
            "feed_state": self.feed.get_state(),  # None for the resident feed
            "config": json.loads(self.config.to_json_best_effort()),
            "commit": git_commit(),
        }

    def evaluate(self, state) -> dict:
        return evaluation.evaluate(self.method, state, self.test, self.config)


def init_spec(config) -> dict:
    """``config.init_from`` as ``{workdir, networks, step}``: a ConfigDict with those keys,
    or a plain workdir string (every shared network, latest step)."""
    init = config.init_from
    if isinstance(init, str):
        return {"workdir": init, "networks": (), "step": None}
    step = init.get("step", -1)
    return {
        "workdir": init.get("workdir", ""),
        "networks": tuple(init.get("networks", ()) or ()),
        "step": None if step is None or step < 0 else int(step),
    }


def make_train_step(method, mesh):
    """``(state, data, root_key) -> (state, metrics)``, jitted once, state donated."""
    repl = sharding.replicated(mesh)

    def step_fn(state, data, root):
        return method.train_step(state, data, jax.random.fold_in(root, state.step))

    return jax.jit(step_fn, donate_argnums=0, out_shardings=(repl, repl))


def run(config, workdir) -> dict:
    """Trains ``config`` in ``workdir`` (resuming if it holds checkpoints).

    Returns the last evaluation summary (``{'eval/p1': mm, ...}``).
    """
    with contextlib.ExitStack() as stack:
        if distributed.is_primary():  # one writer per workdir (the processes of one run share it)
            stack.enter_context(lock.WorkdirLock(workdir))
        return _run(config, workdir)


def _run(config, workdir) -> dict:
    r = Run(config, workdir)
    t = config.train
    train_step = make_train_step(r.method, r.mesh)
    primary = distributed.is_primary()
    if primary:
        writer = writers.MetricWriter(r.workdir, tensorboard=t.tensorboard)
    else:  # other processes compute the same values and write nothing
        writer = writers.NullWriter()
    state, start = r.state, int(jax.device_get(r.state.step))
    clock = writers.Throughput(t.num_steps, t.batch_size, start)
    summary, last_saved = {}, r.ckpt.latest_step()
    log.info(
        "training %s: steps %d -> %d, batch %d on %d %s device(s), %d train frames",
        config.method,
        start,
        t.num_steps,
        t.batch_size,
        r.mesh.devices.size,
        r.mesh.devices.flat[0].platform,
        r.train.size,
    )
    # A live bar on a terminal (tqdm turns itself off when stderr is not a TTY); the log
    # lines carry steps/s, examples/s and ETA everywhere.
    bar = tqdm.tqdm(
        total=t.num_steps,
        initial=start,
        disable=None if primary else True,
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )
    try:
        for step in range(start + 1, t.num_steps + 1):
            bar.update(1)
            state, m = train_step(state, r.feed.next(), r.root)
            if step == start + 1:
                jax.block_until_ready(state)
                clock.start(step)
            if step % t.log_every == 0 or step == t.num_steps:
                _log(writer, clock, step, m, r, last_saved)
            evaluated = step % t.eval_every == 0 or step == t.num_steps
            if evaluated:
                summary = r.evaluate(state)["summary"]
                evaluation.finite_or_raise(summary, step, "evaluation")
                writer.write(step, summary, " ".join(f"{k}={v:.1f}" for k, v in summary.items()))
            if step % t.ckpt_every == 0 or step == t.num_steps:
                # Only fresh evaluation metrics rank checkpoints for "best".
                r.ckpt.save(step, state, r.meta(), summary if evaluated else None)
                last_saved = step
    finally:
        bar.close()
        r.feed.close()
        r.ckpt.close()
        writer.close()
    return summary


def _log(writer, clock, step, m, r, last_saved):
    scalars = {k: float(v) for k, v in jax.device_get(m).items()}
    bad = {k: v for k, v in scalars.items() if not np.isfinite(v)}
    if bad:
        raise FloatingPointError(
            f"non-finite training metrics at step {step}: {bad}. The run stops here; "
            + (
                f"the last checkpoint is step {last_saved} in {r.ckpt.directory}"
                if last_saved is not None
                else "no checkpoint was written yet"
            )
            + ". Lower optim.lr or check the data."
        )
    rates = clock.rates(step)
    scalars.update({f"perf/{k}": v for k, v in rates.items() if np.isfinite(v)})
    eta = writers.format_duration(clock.eta(step))
    line = (
        f"step {step}/{clock.total} | "
        + " ".join(f"{k}={v:.4g}" for k, v in scalars.items() if k.startswith("train/"))
        + f" | {rates['steps_per_sec']:.1f} steps/s {rates['examples_per_sec']:.0f} ex/s"
        + f" | ETA {eta}"
    )
    writer.write(step, scalars, line)
