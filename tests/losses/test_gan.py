"""WSGN objectives against NumPy references and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np

from posejax.losses import gan as L


def np_kernel(a, b, alphas=(0.1, 1.0, 10.0), dot=10.0):
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            d2 = max(np.sum((x - y) ** 2), 0.0)
            out[i, j] = sum((1 + d2 / (2 * al)) ** (-al) for al in alphas) + dot * x @ y
    return out


def test_kernel_and_unbiased_mmd_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 8)), rng.normal(size=(5, 8)) + 0.5
    np.testing.assert_allclose(L.mixed_rq_kernel(a, b), np_kernel(a, b), rtol=1e-4)
    kxx, kyy, kxy = np_kernel(a, a), np_kernel(b, b), np_kernel(a, b)
    ref = ((kxx.sum() - np.trace(kxx)) / 30 + (kyy.sum() - np.trace(kyy)) / 20
           - 2 * kxy.mean())  # fmt: skip
    np.testing.assert_allclose(L.mmd2(jnp.asarray(a), jnp.asarray(b)), ref, rtol=1e-4)


def test_reprojection_weights_and_normaliser():
    pose = np.zeros((1, 16, 3), np.float32)
    cam = np.array([[[1, 0, 0], [0, 1, 0]]], np.float32)
    kp = np.ones((1, 16, 2), np.float32)  # error 1 in u and v everywhere
    # weights: pelvis 0, neck/head 0.1, 13 joints 1 -> (13 + 0.2) * 2 / 32
    np.testing.assert_allclose(L.reprojection(kp, pose, cam), [(13 + 0.2) * 2 / 32], rtol=1e-6)
    mask = np.ones((1, 16), np.float32)
    mask[0, 0] = 0
    np.testing.assert_allclose(L.reprojection(kp, pose, cam, mask=mask), [12.2 * 2 / 32], rtol=1e-6)


def test_camera_constraint_zero_for_scaled_orthographic():
    r = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    cam = 3.7 * r[:2][None]
    assert float(L.camera_constraint(cam)[0]) < 1e-5
    skew = np.array([[[1.0, 0.5, 0], [0, 2.0, 0]]])
    assert float(L.camera_constraint(skew)[0]) > 0.1


def test_diversity_and_latent_terms():
    a = np.zeros((2, 16, 3))
    b = np.full((2, 16, 3), 0.5)
    za, zb = np.zeros((2, 4)), np.ones((2, 4))
    np.testing.assert_allclose(L.diversity(a, b, za, zb), [0.5, 0.5])  # 1 - 0.5 / 1
    np.testing.assert_allclose(L.diversity(a, a + 2, za, zb), [0.0, 0.0])  # ReLU
    np.testing.assert_allclose(L.latent_reconstruction(za, zb), [1.0, 1.0])


def test_witness_gradient_penalty_matches_finite_differences():
    w = jax.random.normal(jax.random.key(0), (48, 4)) * 0.2
    critic = lambda x: jnp.tanh(x.reshape(x.shape[0], -1) @ w)  # noqa: E731
    x = jax.random.normal(jax.random.key(1), (3, 16, 3))
    f_fake = critic(jax.random.normal(jax.random.key(2), (5, 16, 3)))
    f_real = critic(jax.random.normal(jax.random.key(3), (5, 16, 3)))
    gp = L.witness_gradient_penalty(critic, x, f_fake, f_real)

    def witness(xi):
        f = critic(xi[None])
        return L.mixed_rq_kernel(f, f_fake).mean() - L.mixed_rq_kernel(f, f_real).mean()

    eps, norms = 1e-2, []
    for i in range(3):
        g = np.zeros(48)
        for d in range(48):
            e = np.zeros(48, np.float32)
            e[d] = eps
            e = e.reshape(16, 3)
            g[d] = (witness(x[i] + e) - witness(x[i] - e)) / (2 * eps)
        norms.append(np.sqrt(np.sum(g**2) + 1e-5))
    np.testing.assert_allclose(gp, np.mean((np.array(norms) - 1) ** 2), rtol=2e-2)
