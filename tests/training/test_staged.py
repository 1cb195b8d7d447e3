"""Staged initialisation: a stage-2 method with one new network loads the lifter of a
stage-1 run of *another* method (``baseline``) through ``init_from``, keeps it frozen
(no gradient, no optimizer state) and leaves it bit-equal after training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from posejax import methods
from posejax.losses import baseline as losses
from posejax.methods import base, common, lifting
from posejax.methods.baseline import BaselineMethod
from posejax.training import trainer
from tests.helpers import params_of, smoke_config

IO = lifting.ZScoreIO()


class Refiner(nnx.Module):
    def __init__(self, dim: int, *, rngs: nnx.Rngs):
        self.linear = nnx.Linear(dim, dim, rngs=rngs)

    def __call__(self, y):
        flat = y.reshape(y.shape[0], -1)
        return (flat + self.linear(flat)).reshape(y.shape)


class RefinedLifter(base.MethodBase):
    """Test-only two-stage method: the baseline's lifter, then a residual refiner."""

    name = "refined"
    input_joints = IO.in_joints
    networks = ("lifter", "refiner")
    freezable = True
    config_file = "baseline"

    def __init__(self, config, mesh=None):
        super().__init__(config, mesh)
        self.lifter = BaselineMethod(_as_baseline(config), mesh)
        self.refiner_def = nnx.graphdef(nnx.eval_shape(lambda: Refiner(48, rngs=nnx.Rngs(0))))
        self.tx = common.optimizer(config)

    def data_stats(self, train):
        return IO.stats(train)

    def norm_template(self):
        return IO.template()

    def create_state(self, key, norm):
        lifter = self.lifter.create_state(key, norm)
        _, refiner, _ = common.split_module(Refiner(48, rngs=nnx.Rngs(jax.random.fold_in(key, 1))))
        params = {"lifter": lifter.params["lifter"], "refiner": refiner}
        return common.TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats={"lifter": lifter.batch_stats["lifter"], "refiner": {}},
            opt_state={n: self.tx.init(params[n]) for n in self.trainable()},
            norm=lifter.norm,
        )

    def _predict(self, params, state, kp2d, train, key=None):
        y, stats = self.lifter._forward(
            params["lifter"], state.batch_stats["lifter"], state.norm, kp2d, train=train, key=key
        )
        refiner = common.merge(self.refiner_def, params["refiner"], {})
        return refiner(jax.lax.stop_gradient(y) if "lifter" in self.frozen else y), stats

    def train_step(self, state, data, key):
        batch = lifting.draw_batch(data, key, self.config, self.batch_sharding)
        target = IO.targets(batch.pose3d_cam, state.norm)
        trained = {n: state.params[n] for n in self.trainable()}

        def loss_fn(p):
            pred, _ = self._predict({**state.params, **p}, state, batch.kp2d, train=False)
            return losses.l2(pred, target).mean()

        loss, grads = jax.value_and_grad(loss_fn)(trained)
        new = common.apply_gradients(state, self.tx, grads)
        return new, {"train/loss": loss, "train/grad_norm": optax.tree.norm(grads)}

    def lift(self, state, kp2d, hidden=None):
        base.check_kp2d(kp2d, IO.in_joints, hidden)
        y, _ = self._predict(state.params, state, kp2d, train=False)
        return IO.to_mm(y, state.norm)

    def eval_step(self, state, batch, key=None):
        return {"pred": self.lift(state, batch.kp2d), "target": base.root_relative_target(batch)}


def _as_baseline(config):
    c = config.copy_and_resolve_references()
    with c.unlocked():
        c.method, c.train.frozen = "baseline", ()
    return c


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(methods.REGISTRY, "refined", RefinedLifter)


def stages(tmp_path, stage1_steps, stage2_steps, **init):
    """Trains a ``baseline`` stage 1; returns a ``refined`` stage-2 config taking from it."""
    stage1 = smoke_config("baseline")
    stage1.train.num_steps = stage1_steps
    trainer.run(stage1, tmp_path / "stage1")
    stage2 = smoke_config("baseline")
    stage2.method = "refined"
    stage2.train.update(num_steps=stage2_steps, frozen=("lifter",))
    stage2.init_from.update(workdir=str(tmp_path / "stage1"), **init)
    return stage2


def test_stage2_loads_another_methods_network_and_keeps_it_frozen(tmp_path, registered):
    stage2 = stages(tmp_path, 3, 4, networks=("lifter",), step=2)
    trainer.run(stage2, tmp_path / "stage2")

    src = params_of(tmp_path / "stage1", step=2)["lifter"]
    dst = params_of(tmp_path / "stage2")
    jax.tree.map(np.testing.assert_array_equal, src, dst["lifter"])  # bit-equal, frozen
    later = params_of(tmp_path / "stage1", step=3)["lifter"]  # step 2 was taken, not 3
    assert not all(map(np.array_equal, jax.tree.leaves(src), jax.tree.leaves(later)))
    # The refiner trained (step 2 and step 4 differ); the frozen lifter has no optimizer state.
    mid = params_of(tmp_path / "stage2", step=2)["refiner"]
    assert not all(map(np.array_equal, jax.tree.leaves(mid), jax.tree.leaves(dst["refiner"])))
    method = RefinedLifter(stage2)
    fresh = method.create_state(jax.random.key(0), method.norm_template())
    assert set(fresh.opt_state) == {"refiner"}


def test_init_from_errors(tmp_path, registered):
    stage2 = stages(tmp_path, 2, 1, networks=("refiner",))
    with pytest.raises(ValueError, match=r"has no network 'refiner'; it has \['lifter'\]"):
        trainer.run(stage2, tmp_path / "a")
    stage2.init_from.update(networks=("lifter",), step=7)
    with pytest.raises(Exception, match=r"no step 7 .*steps present: \[2\]"):
        trainer.run(stage2, tmp_path / "b")
