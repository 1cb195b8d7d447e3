"""Metrics against NumPy references and closed forms."""

import numpy as np
import pytest

from posejax.core import geometry, metrics


def np_procrustes(pred, target, allow_reflection=False):
    """NumPy reference of evaluation.md section 3 (one pose)."""
    mx, my = target.mean(0), pred.mean(0)
    x0, y0 = target - mx, pred - my
    u, s, vt = np.linalg.svd(x0.T @ y0)
    d = np.ones(3)
    if not allow_reflection:
        d[2] = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag(d) @ vt
    scale = (s * d).sum() / (y0**2).sum()
    t = mx - scale * r @ my
    return scale * pred @ r.T + t


def random_rotation(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


@pytest.fixture
def poses():
    rng = np.random.default_rng(0)
    return rng.normal(scale=300.0, size=(8, 17, 3)).astype(np.float32), rng


def test_mpjpe_constant_offset(poses):
    x, _ = poses
    offset = np.array([6.0, 8.0, 0.0], np.float32)  # |offset| = 10 mm
    np.testing.assert_allclose(metrics.mpjpe(x + offset, x), 10.0, rtol=1e-5)


def test_mpjpe_matches_numpy(poses):
    x, rng = poses
    y = x + rng.normal(scale=20, size=x.shape).astype(np.float32)
    ref = np.linalg.norm(y - x, axis=-1).mean(-1)
    np.testing.assert_allclose(metrics.mpjpe(y, x), ref, rtol=1e-5)
    joints = [0, 3, 5]
    ref_j = np.linalg.norm(y[:, joints] - x[:, joints], axis=-1).mean(-1)
    np.testing.assert_allclose(metrics.mpjpe(y, x, joints), ref_j, rtol=1e-5)


def test_pa_mpjpe_of_similarity_copy_is_zero(poses):
    x, rng = poses
    r = random_rotation(rng)
    y = 0.7 * x @ r.T + np.array([100.0, -50.0, 3000.0])
    assert float(np.max(metrics.pa_mpjpe(y.astype(np.float32), x))) < 1e-2
    assert float(np.min(metrics.mpjpe(y.astype(np.float32), x))) > 10.0


def test_pa_mpjpe_mirror_only_with_reflection(poses):
    x, _ = poses
    mirrored = x * np.array([1.0, 1.0, -1.0], np.float32)
    assert float(np.max(metrics.pa_mpjpe(mirrored, x, allow_reflection=True))) < 1e-2
    assert float(np.min(metrics.pa_mpjpe(mirrored, x))) > 10.0


def test_pa_mpjpe_matches_numpy(poses):
    x, rng = poses
    y = x + rng.normal(scale=40, size=x.shape).astype(np.float32)
    for refl in (False, True):
        ref = np.array(
            [
                np.linalg.norm(np_procrustes(yi, xi, refl) - xi, axis=-1).mean()
                for yi, xi in zip(y, x, strict=True)
            ]
        )
        np.testing.assert_allclose(metrics.pa_mpjpe(y, x, allow_reflection=refl), ref, rtol=1e-3)


def test_n_mpjpe_scale(poses):
    x, _ = poses
    assert float(np.max(metrics.n_mpjpe(1.3 * x, x))) < 1e-3
    assert float(np.min(metrics.mpjpe(1.3 * x, x))) > 1.0


def test_oracles(poses):
    x, rng = poses
    hyps = x[:, None] + rng.normal(scale=30, size=(8, 5, 17, 3)).astype(np.float32)
    per_pose = np.linalg.norm(hyps - x[:, None], axis=-1).mean(-1)  # [8, 5]
    np.testing.assert_allclose(metrics.best_of_k(hyps, x), per_pose.min(-1), rtol=1e-5)
    joint = np.linalg.norm(hyps - x[:, None], axis=-1).min(1).mean(-1)
    np.testing.assert_allclose(metrics.best_of_k(hyps, x, oracle="joint"), joint, rtol=1e-5)
    assert np.all(joint <= per_pose.min(-1) + 1e-4)
    np.testing.assert_allclose(
        metrics.mean_of_k(hyps, x), np.linalg.norm(hyps.mean(1) - x, axis=-1).mean(-1), rtol=1e-5
    )
    np.testing.assert_allclose(
        metrics.median_of_k(hyps, x),
        np.linalg.norm(np.median(hyps, 1) - x, axis=-1).mean(-1),
        rtol=1e-5,
    )
    pa = metrics.best_of_k(hyps, x, metric="pa_mpjpe")
    assert pa.shape == (8,)
    with pytest.raises(ValueError, match="joint-wise"):
        metrics.best_of_k(hyps, x, metric="pa_mpjpe", oracle="joint")


def test_pck_auc_closed_form():
    errors = np.array([[0.0, 50.0, 149.9, 150.0]], np.float32)
    np.testing.assert_allclose(metrics.pck(errors), [0.75])  # strict < 150
    # AUC: thresholds 0..150 step 5; error e counts for thresholds > e.
    thr = np.arange(0, 151, 5)
    ref = np.mean([(errors[0] < t).mean() for t in thr])
    np.testing.assert_allclose(metrics.auc(errors), [ref], rtol=1e-6)


def test_action_table_mean_of_actions_vs_pooled():
    errors = np.array([10.0, 10.0, 10.0, 40.0])
    actions = ["Walking", "Walking", "Walking", "Eating"]
    table = metrics.action_table(errors, actions)
    assert table["per_action"] == {"Eating": 40.0, "Walking": 10.0}
    assert list(table["per_action"]) == ["Eating", "Walking"]  # H36M table order
    assert table["mean_of_actions"] == 25.0
    assert table["pooled"] == 17.5
    with pytest.raises(ValueError, match="NaN"):
        metrics.action_table(np.array([np.nan]), ["Walking"])


def test_shape_errors_name_shapes():
    with pytest.raises(ValueError, match=r"\(3, 16, 3\)"):
        metrics.mpjpe(np.zeros((3, 16, 3)), np.zeros((3, 17, 3)))
    with pytest.raises(KeyError, match="mpjpe"):
        metrics.best_of_k(np.zeros((1, 2, 17, 3)), np.zeros((1, 17, 3)), metric="p9")


def test_root_relative():
    x = np.arange(17 * 3, dtype=np.float32).reshape(17, 3)
    r = geometry.root_relative(x)
    np.testing.assert_allclose(r[0], 0)
    np.testing.assert_allclose(r[5], x[5] - x[0])
