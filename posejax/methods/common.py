"""Pieces every method shares: the train state, optimizers and schedules from config,
NNX split/merge into plain dicts, and random streams."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import numpy as np
import optax
from flax import nnx

from posejax.methods import schedules

# Purpose keys: fold_in(step_key, STREAM) (STYLE.md rule 20).
DATA, AUGMENT, DROPOUT, LATENT, NOISE, CRITIC = range(6)


@flax.struct.dataclass
class TrainState:
    """All networks and optimizer states of a method in one pytree.

    Attributes:
      step: int32 scalar, optimizer steps taken.
      params: ``{network: nested dict of arrays}``.
      batch_stats: ``{network: nested dict}`` (BatchNorm running statistics; may be empty).
      opt_state: ``{optimizer name: optax state}``.
      norm: normalisation statistics from the training split (not trained).
    """

    step: jax.Array
    params: dict
    batch_stats: dict
    opt_state: dict
    norm: dict


def split_module(module: nnx.Module):
    """``module -> (graphdef, params dict, batch_stats dict)`` as plain nested dicts."""
    graphdef, params, stats = nnx.split(module, nnx.Param, nnx.BatchStat)
    return graphdef, nnx.to_pure_dict(params), nnx.to_pure_dict(stats)


def merge(graphdef, params: dict, batch_stats: dict):
    return nnx.merge(graphdef, params, batch_stats)


def batch_stats_of(module: nnx.Module) -> dict:
    return nnx.to_pure_dict(nnx.state(module, nnx.BatchStat))


def step_key(root: jax.Array, step) -> jax.Array:
    return jax.random.fold_in(root, step)


def schedule(config) -> optax.Schedule:
    """Learning-rate schedule from ``config.optim.lr`` and ``config.schedule``
    (``schedules.REGISTRY``: constant, exponential, cosine, epoch_exponential, ...)."""
    return schedules.make(config)


def optimizer(config, lr: optax.Schedule | float | None = None) -> optax.GradientTransformation:
    """Optimizer from ``config.optim`` (``name``: adam, adamw, rmsprop, sgd; ``amsgrad``:
    Adam's AMSGrad variant; rmsprop: Torch's, ``alpha`` the squared-gradient average, no
    momentum, ``lr g / (sqrt(v) + eps)``)."""
    o = config.optim
    lr = schedule(config) if lr is None else lr
    if o.name == "adam" and o.get("amsgrad", False):
        tx = optax.amsgrad(lr, b1=o.b1, b2=o.b2, eps=o.eps)  # PyTorch Adam(amsgrad=True)
    elif o.name == "adam":
        tx = optax.adam(lr, b1=o.b1, b2=o.b2, eps=o.eps)
    elif o.name == "adamw":
        tx = optax.adamw(lr, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay)
    elif o.name == "rmsprop":  # Torch optim.rmsprop: eps outside the square root
        tx = optax.rmsprop(lr, decay=o.get("alpha", 0.99), eps=o.eps, eps_in_sqrt=False)
    elif o.name == "sgd":
        tx = optax.sgd(lr, momentum=o.get("momentum", 0.9))
    else:
        raise ValueError(f"unknown optim.name {o.name!r}; expected adam, adamw, rmsprop, sgd")
    if o.get("grad_clip", 0.0):
        tx = optax.chain(optax.clip_by_global_norm(o.grad_clip), tx)
    return tx


def tree_size(tree: Any) -> int:
    return int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(tree)))


def apply_gradients(state: TrainState, tx, grads: dict, batch_stats: dict | None = None):
    """``state`` one optimizer step on: ``grads`` holds the trained networks (one optax
    state ``state.opt_state[name]`` each); the other networks are left as they are."""
    params, opt = dict(state.params), dict(state.opt_state)
    for name, g in grads.items():
        updates, opt[name] = tx.update(g, opt[name], params[name])
        params[name] = optax.apply_updates(params[name], updates)
    stats = state.batch_stats if batch_stats is None else {**state.batch_stats, **batch_stats}
    return state.replace(step=state.step + 1, params=params, opt_state=opt, batch_stats=stats)
