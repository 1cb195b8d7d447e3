"""Shared config defaults and the one variant parser of every config.

Not a runnable config; ``configs/<method>.py`` files start from ``base(method)`` (the same
top-level sections for every method, STYLE.md 9) and read their ``:variant`` argument with
``parse_variants``: a comma-separated mix of at most one size (``smoke``, ``quick``), one data
source (``synthpose``, ``h36m``, ``cmu_mocap``, ``mpi_inf_3dhp``) and one 2D input kind
(``det``, ``gt``), e.g. ``--config=configs/mdn.py:quick,cmu_mocap,gt``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import ml_collections

SIZES = ("smoke", "quick")
SOURCES = ("synthpose", "h36m", "cmu_mocap", "mpi_inf_3dhp")
INPUTS = ("det", "gt")
# field of ``Variants`` -> (what the error calls it, its choices); at most one per group
GROUPS = {"size": ("size", SIZES), "source": ("data source", SOURCES),
          "input_2d": ("2D input kind", INPUTS)}  # fmt: skip


class Variants(NamedTuple):
    """A parsed ``:variant`` argument; ``None``: not given (the config's default)."""

    size: str | None = None  # smoke | quick | None (the full run)
    source: str | None = None  # synthpose | h36m | cmu_mocap | mpi_inf_3dhp
    input_2d: str | None = None  # det | gt
    extra: frozenset[str] = frozenset()  # the config's own variants (``extra=``) given


def parse_variants(
    arg: str | None,
    path_name: str,
    extra: Iterable[str] = (),
    fixed: Mapping[str, str] | None = None,
) -> Variants:
    """``"quick,cmu_mocap,gt"`` -> ``Variants(size="quick", source="cmu_mocap", input_2d="gt")``.

    Args:
      arg: the text after ``:`` in ``--config=configs/x.py:arg``; ``None`` or ``""``: defaults.
      path_name: the config file as errors name it, e.g. ``"configs/mdn.py"``.
      extra: variants of this config only (returned in ``Variants.extra``).
      fixed: groups the file itself pins, e.g. ``{"input_2d": "det"}`` for ``gan_det.py``:
        the same value may be given, another one is an error; it is returned when not given.

    Raises:
      ValueError: an unknown variant (the message names ``path_name`` and lists the valid
        ones), two of one group (two sizes, two sources, ``det`` and ``gt``), a variant that
        contradicts ``fixed``, or ``det`` with ``cmu_mocap`` (motion capture has no detections).
    """
    extra = tuple(extra)
    parts = list(dict.fromkeys(p.strip() for p in (arg or "").split(",") if p.strip()))
    known = {p for _, choices in GROUPS.values() for p in choices}.union(extra)
    unknown = [p for p in parts if p not in known]
    if unknown:
        groups = "; ".join(f"one {what} ({', '.join(c)})" for what, c in GROUPS.values())
        own = f"; any of {', '.join(extra)}" if extra else ""
        raise ValueError(
            f"unknown variant {unknown[0]!r} of {path_name}; expected a comma-separated mix of "
            f"at most {groups}{own}"
        )
    chosen = {}
    for field, (what, choices) in GROUPS.items():
        given = [p for p in parts if p in choices]
        if len(given) > 1:
            alternatives = f"{', '.join(choices[:-1])} or {choices[-1]}"
            raise ValueError(
                f"{path_name}: choose one {what}, {alternatives}, "
                f"not {'both' if len(given) == 2 else 'several'} (got {', '.join(given)})"
            )
        chosen[field] = given[0] if given else None
    for field, value in (fixed or {}).items():
        if chosen[field] not in (None, value):
            raise ValueError(
                f"{path_name}: variant {chosen[field]!r} contradicts this file's "
                f"{GROUPS[field][0]} {value!r}: drop it or use another config file"
            )
        chosen[field] = value
    if chosen["source"] == "cmu_mocap" and chosen["input_2d"] == "det":
        raise ValueError(f"{path_name}: cmu_mocap has no detections; use gt 2D input with it")
    return Variants(**chosen, extra=frozenset(p for p in parts if p in extra))


def apply_data(c: ml_collections.ConfigDict, v: Variants) -> ml_collections.ConfigDict:
    """Sets ``data.source`` and ``data.input_2d`` from ``v``; with ``cmu_mocap`` and no 2D
    input kind given, ground-truth 2D (motion capture has no detector output)."""
    if v.source is not None:
        c.data.source = v.source  # the file-based sources also need data.<source>.dir
    if v.input_2d is not None:
        c.data.input_2d = v.input_2d
    elif c.data.source == "cmu_mocap":
        c.data.input_2d = "gt"
    return c


def base(method: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = method
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.source = "synthpose"  # synthpose | h36m | cmu_mocap | mpi_inf_3dhp
    c.data.via_tfds = True  # read (building if needed) the TFDS dataset; False: call the source
    c.data.tfds_dir = ""  # TFDS data_dir ('' = TFDS default, ~/tensorflow_datasets)
    c.data.input_2d = "gt"  # gt | det
    c.data.train_split = "train"
    c.data.test_split = "test"
    c.data.synthpose = dict(
        seed=0, frames_per_sequence=250, sequences_per_action=2, tfds_config="default"
    )
    c.data.h36m = dict(dir="", detections="")  # VideoPose3D npz folder, 2D file name
    c.data.cmu_mocap = dict(dir="")  # folder of <subject>.asf / <subject>_<take>.amc
    c.data.mpi_inf_3dhp = dict(dir="", detections="")  # ANS npz folder, 2D file name
    c.data.augment = dict(rotate=False, flip_prob=0.0)
    # resident: the split on the devices, batches drawn inside jit (DESIGN.md rule 1);
    # loader: a grain pipeline (worker processes, device prefetch), for methods that allow it.
    c.data.feed = "resident"
    c.data.loader = dict(num_workers=0, prefetch=2)

    c.model = ml_collections.ConfigDict()
    c.loss = ml_collections.ConfigDict()
    c.optim = dict(
        name="adam", lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, grad_clip=0.0
    )
    c.schedule = dict(
        name="exponential", decay_rate=0.96, decay_steps=100_000, staircase=False, warmup_steps=0
    )
    c.train = dict(
        batch_size=64,
        num_steps=100_000,
        log_every=500,
        eval_every=10_000,
        ckpt_every=10_000,
        keep=2,
        tensorboard=True,
        frozen=(),  # networks not trained (no gradients, no optimizer state); freezable methods
    )
    c.eval = dict(
        protocol="standard",
        batch_size=1024,
        stride=1,
        allow_reflection=False,
        best_metric="eval/p1",
    )
    c.mesh = dict(data=-1)  # devices on the 'data' axis; -1 = all
    # Staged initialisation: networks (default: every network both methods have) of another
    # run's step (-1: latest), whatever its method; used when the workdir has no checkpoint.
    c.init_from = dict(workdir="", networks=(), step=-1)
    return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Seconds on a CPU: tiny data and a few steps (tests use it)."""
    c.data.via_tfds = False  # generate in memory (tests switch TFDS on where they test it)
    c.data.synthpose.frames_per_sequence = 50  # = the TFDS 'small' config
    c.data.synthpose.sequences_per_action = 1
    c.data.synthpose.tfds_config = "small"
    c.train.batch_size = 32
    c.train.num_steps = 4
    c.train.log_every = 2
    c.train.eval_every = 4
    c.train.ckpt_every = 2
    c.train.tensorboard = False
    c.eval.batch_size = 256
    c.eval.stride = 4
    return c
