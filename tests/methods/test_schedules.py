"""Learning-rate schedules from the registry against closed forms, WSGN's per-epoch decay,
the gan config's optimizer (Adam 0.5 / 0.9, gradient clipping), and registry errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import configs
from posejax.methods import common, schedules

STEPS = (0, 1, 7, 99, 100, 101, 250, 999, 1000, 1001, 2499, 2500, 5000)


def lrs(fn, steps=STEPS):
    return np.array([float(fn(jnp.asarray(s))) for s in steps])


def test_registry_names():
    assert {"constant", "exponential", "cosine", "epoch_exponential"} <= set(schedules.REGISTRY)
    assert all(callable(b) for b in schedules.REGISTRY.values())


def test_constant_exponential_cosine_closed_forms():
    c = configs.get_config("baseline", "smoke")
    lr = c.optim.lr
    c.schedule.name = "constant"
    np.testing.assert_allclose(lrs(schedules.make(c)), lr, rtol=1e-6)

    c.schedule.update(name="exponential", decay_rate=0.96, decay_steps=100, staircase=False)
    want = [lr * 0.96 ** (s / 100) for s in STEPS]
    np.testing.assert_allclose(lrs(schedules.make(c)), want, rtol=1e-5)
    c.schedule.staircase = True
    want = [lr * 0.96 ** (s // 100) for s in STEPS]
    np.testing.assert_allclose(lrs(schedules.make(c)), want, rtol=1e-5)
    # common.schedule is the registry's schedule
    np.testing.assert_array_equal(lrs(common.schedule(c)), lrs(schedules.make(c)))

    c.schedule.update(name="cosine", warmup_steps=100)
    c.train.num_steps = 2500
    steps = [s for s in STEPS if s <= 2500]

    def cosine(s):
        if s < 100:
            return lr * s / 100
        return lr * 0.5 * (1 + math.cos(math.pi * (s - 100) / 2400))

    np.testing.assert_allclose(
        lrs(schedules.make(c), steps), [cosine(s) for s in steps], rtol=1e-5, atol=1e-9
    )


def test_epoch_exponential_is_wsgn_formula():
    c = configs.get_config("gan_gt")  # lr 1e-4, x 0.94 per epoch after 2 epochs of 1,250
    s = c.schedule
    assert (s.name, s.decay_rate, s.decay_start, s.epoch_steps) == (
        "epoch_exponential",
        0.94,
        2,
        1250,
    )
    fn = schedules.make(c)
    for step in (0, 1, 1249, 1250, 2499, 2500, 2501, 3750, 12_499, 12_500, 62_499):
        epoch = step // 1250
        want = 1e-4 * 0.94 ** max(0, epoch - (2 - 1))
        np.testing.assert_allclose(float(fn(step)), want, rtol=1e-6)
        np.testing.assert_allclose(float(fn(jnp.asarray(step, jnp.int32))), want, rtol=1e-6)
    assert float(fn(2499)) == pytest.approx(1e-4) and float(fn(2500)) == pytest.approx(0.94e-4)
    quick = configs.get_config("gan_gt", "quick")  # lr 1e-3, 800-step epochs
    fn = schedules.make(quick)
    for step in (0, 799, 800, 1599, 1600, 7999):
        want = 1e-3 * 0.94 ** max(0, step // 800 - 1)
        np.testing.assert_allclose(float(fn(step)), want, rtol=1e-6)


def test_gan_optimizer_adam_betas_and_grad_clip():
    c = configs.get_config("gan_gt", "smoke")
    assert (c.optim.name, c.optim.b1, c.optim.b2) == ("adam", 0.5, 0.9)
    c.schedule.epoch_steps = 1  # a different rate at every step
    c.optim.grad_clip = 1.0
    params = {"w": jnp.zeros((3, 2)), "b": jnp.zeros((2,))}
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    grads = [  # norms: far above the clip, below it, far above again
        jax.tree.map(lambda p, k=k: 50.0 * jax.random.normal(k, p.shape), params)
        for k in (k1, k2, k3)
    ]
    grads[1] = jax.tree.map(lambda g: g / 500.0, grads[1])

    def run(tx):
        state, out = tx.init(params), []
        for g in grads:
            u, state = tx.update(g, state, params)
            out.append(u)
        return out

    lr = lambda step: 1e-4 * 0.94 ** jnp.maximum(0, step // 1 - 1)
    want = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr, b1=0.5, b2=0.9, eps=1e-8))
    unclipped = optax.adam(lr, b1=0.5, b2=0.9, eps=1e-8)
    got = run(common.optimizer(c))
    for g, w in zip(got, run(want), strict=True):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12), g, w)
    differs = [
        not np.allclose(np.asarray(a), np.asarray(b), rtol=1e-3)
        for g, u in zip(got, run(unclipped), strict=True)
        for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(u), strict=True)
    ]
    assert any(differs)  # the clip changed Adam's moments: it is really in the chain
    c.optim.grad_clip = 0.0
    for g, w in zip(run(common.optimizer(c)), run(unclipped), strict=True):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12), g, w)


def test_unknown_and_duplicate_names():
    c = configs.get_config("baseline", "smoke")
    c.schedule.name = "linear_warmup"
    with pytest.raises(ValueError, match=r"unknown schedule.name 'linear_warmup'.*'constant'"):
        schedules.make(c)
    with pytest.raises(
        ValueError, match="unknown schedule.name 'linear_warmup'.*epoch_exponential"
    ):
        common.optimizer(c)
    with pytest.raises(ValueError, match="'cosine' is already registered"):
        schedules.register("cosine")(lambda config: optax.constant_schedule(1.0))


def test_register_a_new_schedule():
    name = "test_half"
    try:

        @schedules.register(name)
        def half(config):
            return optax.constant_schedule(config.optim.lr / 2)

        c = configs.get_config("baseline", "smoke")
        c.schedule.name = name
        assert float(schedules.make(c)(10)) == pytest.approx(c.optim.lr / 2)
        assert float(common.schedule(c)(10)) == pytest.approx(c.optim.lr / 2)
    finally:
        schedules.REGISTRY.pop(name, None)
