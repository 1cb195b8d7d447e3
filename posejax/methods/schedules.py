"""Learning-rate schedules from config: one open registry, ``config.schedule.name`` -> builder.

``REGISTRY`` maps a name to ``builder(config) -> optax.Schedule``; the builder reads
``config.optim.lr`` (the base rate), ``config.schedule`` (its own fields) and, where it needs
the run length, ``config.train.num_steps``. A method adds its own with ``register``::

  @schedules.register("my_schedule")
  def my_schedule(config):
      return optax.constant_schedule(config.optim.lr)

``make(config)`` builds the one ``config.schedule.name`` names and lists the valid names for
an unknown one.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import optax

Builder = Callable[..., optax.Schedule]  # (config: ml_collections.ConfigDict) -> Schedule

REGISTRY: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: adds ``builder`` to ``REGISTRY`` as ``name`` (a second one is an error)."""

    def add(builder: Builder) -> Builder:
        if name in REGISTRY:
            raise ValueError(f"schedule {name!r} is already registered ({REGISTRY[name]})")
        REGISTRY[name] = builder
        return builder

    return add


def make(config) -> optax.Schedule:
    """The schedule ``config.schedule.name`` names, built from ``config``."""
    name = config.schedule.name
    if name not in REGISTRY:
        raise ValueError(f"unknown schedule.name {name!r}; expected one of {sorted(REGISTRY)}")
    return REGISTRY[name](config)


@register("constant")
def constant(config) -> optax.Schedule:
    """``lr(step) = optim.lr``."""
    return optax.constant_schedule(config.optim.lr)


@register("exponential")
def exponential(config) -> optax.Schedule:
    """``lr(step) = optim.lr * decay_rate ** (step / decay_steps)`` (floored with
    ``staircase``)."""
    s = config.schedule
    return optax.exponential_decay(
        config.optim.lr, s.decay_steps, s.decay_rate, staircase=s.staircase
    )


@register("cosine")
def cosine(config) -> optax.Schedule:
    """Linear warm-up from 0 over ``warmup_steps``, then cosine decay to 0 at
    ``train.num_steps``."""
    s = config.schedule
    return optax.warmup_cosine_decay_schedule(
        0.0, config.optim.lr, s.warmup_steps, config.train.num_steps
    )


@register("epoch_exponential")
def epoch_exponential(config) -> optax.Schedule:
    """WSGN's per-epoch decay (``shared/spec/wsgn.md``): ``lr(step) = optim.lr *
    decay_rate ** max(0, epoch - (decay_start - 1))``, ``epoch = step // epoch_steps``
    (0-based): the first ``decay_start`` epochs run at ``optim.lr``."""
    s = config.schedule
    spe, decay, start = s.epoch_steps, s.decay_rate, s.decay_start
    base = config.optim.lr

    def lr(step):
        epoch = step // spe
        return base * decay ** jnp.maximum(0, epoch - (start - 1))

    return lr


@register("epoch_step_decay")
def epoch_step_decay(config) -> optax.Schedule:
    """HTNet's and ANS's per-epoch decay (``shared/spec/ans.md`` sections 5.2, 6): after
    epoch ``e`` (1-based) the rate is multiplied by ``large_decay`` if ``e %
    large_decay_every == 0``, else by ``decay``. With ``epoch = step // epoch_steps``
    (0-based) epochs finished: ``lr = optim.lr * large_decay ** (epoch // every) *
    decay ** (epoch - epoch // every)``."""
    s = config.schedule
    spe, every, base = s.epoch_steps, s.large_decay_every, config.optim.lr

    def lr(step):
        epoch = step // spe
        large = epoch // every
        return base * s.large_decay**large * s.decay ** (epoch - large)

    return lr


@register("step_drop")
def step_drop(config) -> optax.Schedule:
    """``optim.lr``, multiplied by ``schedule.factor`` at each step of ``schedule.drop_steps``
    (hourglass stage 2: x 0.1 after epoch 40 of 50)."""
    s = config.schedule
    drops = {int(step): float(s.factor) for step in s.drop_steps}
    return optax.piecewise_constant_schedule(config.optim.lr, drops)
