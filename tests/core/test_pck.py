"""MPI-INF-3DHP PCK / AUC (posejax.core.pck) on hand-made errors, both joint conventions."""

import jax
import numpy as np
import pytest

from posejax.core import pck

# Per-joint errors of one frame (H36M-17 order), mm: pelvis 0, the rest chosen by hand, away
# from the thresholds (a float32 norm may round across one); closed forms test those.
ERRORS = np.array(
    [0.0, 10.2, 149.9, 150.3, 40.4, 200.0, 75.5, 3.3, 20.6, 500.0, 99.1, 0.5, 5.2, 149.2,
     60.7, 151.0, 1.4]
)  # fmt: skip


def displaced(target, errors, rng):
    """``target [..., J, 3]`` with joint j moved ``errors[..., j]`` mm in a random direction."""
    direction = rng.normal(size=target.shape)
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    return target + errors[..., None] * direction


def pose_pair(errors, rng):
    """A root-relative target and a prediction whose joint j is ``errors[j]`` mm off."""
    target = rng.normal(scale=300.0, size=errors.shape + (3,))
    target -= target[..., :1, :]
    return displaced(target, errors, rng), target


def np_pck(errors, thr):
    return np.mean(errors < thr, axis=-1)


def test_mpi14_joint_set():
    # evaluation.md section 7: the 14 joints without pelvis 0, spine 7 and neck/nose 9.
    assert sorted(pck.MPI14_JOINTS.tolist()) == sorted(set(range(17)) - {0, 7, 9})
    assert pck.AUC_THRESHOLDS["mpi14"].tolist() == list(range(0, 151, 5))
    assert pck.AUC_THRESHOLDS["ans17"].tolist() == list(range(150))


def test_pck_and_auc_on_hand_made_errors():
    pred, target = pose_pair(ERRORS, np.random.default_rng(0))
    e14 = ERRORS[pck.MPI14_JOINTS]
    # ans17: below 150 (strict) are joints 0, 1, 2, 4, 6, 7, 8, 10, 11, 12, 13, 14, 16.
    np.testing.assert_allclose(pck.pck(pred, target, "ans17"), 13 / 17, rtol=1e-6)
    # mpi14 drops 0, 7 (below) and 9 (above): 11 of the 14 remain below.
    np.testing.assert_allclose(pck.pck(pred, target, "mpi14"), 11 / 14, rtol=1e-6)
    np.testing.assert_allclose(pck.pck(pred, target, "mpi14", 100.0), np_pck(e14, 100), rtol=1e-6)
    auc17 = np.mean([np_pck(ERRORS, t) for t in range(150)])
    auc14 = np.mean([np_pck(e14, t) for t in range(0, 151, 5)])
    np.testing.assert_allclose(pck.auc(pred, target, "ans17"), auc17, atol=1e-5)
    np.testing.assert_allclose(pck.auc(pred, target, "mpi14"), auc14, atol=1e-5)


def test_closed_forms():
    target = np.zeros((2, 17, 3))
    pred = np.zeros((2, 17, 3))
    pred[..., 1:, 0] = 100.0  # every joint but the pelvis 100 mm off
    np.testing.assert_allclose(pck.pck(pred, target, "mpi14"), [1.0, 1.0])
    np.testing.assert_allclose(pck.pck(pred, target, "mpi14", 100.0), [0.0, 0.0])  # strict <
    np.testing.assert_allclose(pck.pck(pred * 1.5, target, "ans17"), [1 / 17, 1 / 17])  # 150
    # mpi14 AUC: thresholds 105..150 (10 of 31) count all 14 joints.
    np.testing.assert_allclose(pck.auc(pred, target, "mpi14"), 10 / 31, rtol=1e-6)
    # ans17: the pelvis counts at thresholds 1..149 (149 of 150), the rest at 101..149 (49).
    want = (149 + 16 * 49) / (150 * 17)
    np.testing.assert_allclose(pck.auc(pred, target, "ans17"), want, rtol=1e-6)
    np.testing.assert_allclose(pck.pck(target, target, "ans17"), 1.0)
    np.testing.assert_allclose(pck.auc(target, target, "ans17"), 149 / 150, rtol=1e-6)


def test_best_of_s():
    rng = np.random.default_rng(1)
    # Frame 0: hypothesis 1 has the best PCK, hypothesis 2 the best AUC; frame 1: ties.
    errs = np.zeros((2, 3, 17))
    errs[0, 0, 1:] = 162.0  # PCK 0 (mpi14)
    errs[0, 1, 1:] = 142.0  # PCK 1, AUC 2/31
    errs[0, 2, 1:] = 12.0
    errs[0, 2, 1:4] = 202.0  # 11 of 14 joints at 12 mm: PCK 11/14, higher AUC
    errs[1, 0, 1:] = 52.0
    errs[1, 1, 1:] = 22.0  # both PCK 1; the pck-selected is the lower mean error
    errs[1, 2, 1:] = 302.0
    target = pose_pair(np.zeros((2, 17)), rng)[1]
    hyps = np.stack([displaced(target, errs[:, s], rng) for s in range(3)], axis=1)
    auc_each = np.stack([pck.auc(hyps[:, s], target) for s in range(3)], -1)
    pck_each = np.stack([pck.pck(hyps[:, s], target) for s in range(3)], -1)
    np.testing.assert_allclose(pck.best_pck(hyps, target), pck_each.max(-1), rtol=1e-6)
    np.testing.assert_allclose(pck.best_pck(hyps, target), [1.0, 1.0])
    np.testing.assert_allclose(pck.best_auc(hyps, target), auc_each.max(-1), rtol=1e-6)
    np.testing.assert_allclose(pck.best_auc(hyps, target)[0], auc_each[0, 2], rtol=1e-6)
    by_pck = pck.best_auc(hyps, target, select="pck")
    np.testing.assert_allclose(by_pck, [auc_each[0, 1], auc_each[1, 1]], rtol=1e-6)
    np.testing.assert_allclose(auc_each[:, 1], [2 / 31, 26 / 31], rtol=1e-6)
    b17 = pck.best_pck(hyps, target, "ans17")
    np.testing.assert_allclose(b17, [1.0, 1.0])
    np.testing.assert_allclose(pck.best_pck(hyps[:, :1], target, "ans17"), [1 / 17, 1.0])


def test_jit_and_errors():
    rng = np.random.default_rng(2)
    hyps, target = rng.normal(size=(4, 5, 17, 3)) * 100, rng.normal(size=(4, 17, 3)) * 100
    for f, kw in ((pck.best_pck, {}), (pck.best_auc, {"select": "pck"}), (pck.best_auc, {})):
        jitted = jax.jit(f, static_argnames=("convention", "select")[: 1 + len(kw)])
        for convention in ("ans17", "mpi14"):
            np.testing.assert_allclose(
                jitted(hyps, target, convention=convention, **kw),
                f(hyps, target, convention, **kw), rtol=1e-6,
            )  # fmt: skip
    traced = jax.jit(pck.pck, static_argnames="convention")(hyps[:, 0], target, "mpi14", 120.0)
    np.testing.assert_allclose(traced, pck.pck(hyps[:, 0], target, "mpi14", 120.0))
    with pytest.raises(ValueError, match="unknown PCK convention 'mpi16'.*'ans17', 'mpi14'"):
        pck.pck(target, target, "mpi16")
    with pytest.raises(ValueError, match=r"expected pred \[..., 17, 3\].*found \(4, 16, 3\)"):
        pck.pck(target[:, :16], target[:, :16])
    with pytest.raises(ValueError, match=r"expected pred \[..., S, 17, 3\]"):
        pck.best_pck(target, target)
    with pytest.raises(ValueError, match="unknown select 'mpjpe'"):
        pck.best_auc(hyps, target, select="mpjpe")
