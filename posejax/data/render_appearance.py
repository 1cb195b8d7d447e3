"""SynthPose render bodies: the capsule table and who wears what.

    body = render_appearance.appearance(subject_ids, jax.random.key(0), "studio")
    body.radii   # [B, len(CAPSULES)] mm; body.colours: [B, len(MATERIALS), 2, 3] RGB

This module holds the body model, ``CAPSULES`` (a segment between weighted joints, a base
radius and a material each: torso (a central and two side capsules), hip bar, clavicles,
limbs, feet, neck and head), the ``MATERIALS`` (skin, shirt, trousers, shoes, hair), the
clothing palettes, and ``appearance``, which draws a ``Body`` per example: girth and
left/right-symmetric capsule radii, bone-length factors (``wild`` only), sleeves and
shorts, and per material a base and a pattern colour, a pattern (plain, stripes across or
along the limb, checks) and its period (mm). ``studio`` bodies are Human3.6M-like (muted
palette clothes, bones as given); ``wild`` ones spread wider (any hue, rescaled bones).
The ray casting and shading that use a ``Body`` are in ``posejax.data.render`` (which
re-exports ``Body`` and ``appearance``); domains and the draw helpers in
``posejax.data.render_scene``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import skeleton as skel
from posejax.data.render_scene import Draws, get_domain, hsv

MATERIALS = ("skin", "shirt", "trousers", "shoes", "hair")
SKIN, SHIRT, TROUSERS, SHOES, HAIR = range(len(MATERIALS))
_SLEEVE, _LEG = -1, -2  # shirt or skin (sleeves), trousers or skin (shorts), per body
# name, end a and end b as {joint: weight}, radius mm, material.
_CAPSULE_TABLE = (
    ("head", {9: 0.85, 10: 0.15}, {9: 0.5, 10: 0.5}, 85.0, SKIN),
    ("neck", {8: 1.0}, {8: 0.3, 9: 0.7}, 50.0, SKIN),
    ("torso", {0: 0.8, 7: 0.2}, {7: 0.25, 8: 0.75}, 110.0, SHIRT),
    ("torso_l", {0: 0.05, 4: 0.6, 7: 0.35}, {8: 0.15, 11: 0.55, 7: 0.3}, 85.0, SHIRT),
    ("torso_r", {0: 0.05, 1: 0.6, 7: 0.35}, {8: 0.15, 14: 0.55, 7: 0.3}, 85.0, SHIRT),
    ("hips", {0: 0.25, 1: 0.75}, {0: 0.25, 4: 0.75}, 90.0, TROUSERS),
    ("clavicle_l", {8: 1.0}, {11: 1.0}, 55.0, SHIRT),
    ("clavicle_r", {8: 1.0}, {14: 1.0}, 55.0, SHIRT),
    ("upper_arm_l", {11: 1.0}, {12: 1.0}, 45.0, SHIRT),
    ("upper_arm_r", {14: 1.0}, {15: 1.0}, 45.0, SHIRT),
    ("forearm_l", {12: 1.0}, {13: 1.0}, 38.0, _SLEEVE),  # extended past the wrist: the hand
    ("forearm_r", {15: 1.0}, {16: 1.0}, 38.0, _SLEEVE),
    ("thigh_l", {4: 1.0}, {5: 1.0}, 65.0, TROUSERS),
    ("thigh_r", {1: 1.0}, {2: 1.0}, 65.0, TROUSERS),
    ("shank_l", {5: 1.0}, {6: 1.0}, 48.0, _LEG),
    ("shank_r", {2: 1.0}, {3: 1.0}, 48.0, _LEG),
    ("foot_l", {6: 1.0}, {6: 1.0}, 38.0, SHOES),  # heel and toe placed from the ankle
    ("foot_r", {3: 1.0}, {3: 1.0}, 38.0, SHOES),
)
CAPSULES = tuple(c[0] for c in _CAPSULE_TABLE)
NUM_CAPSULES = len(CAPSULES)
_IDX = {n: i for i, n in enumerate(CAPSULES)}


def _weights(end: int) -> np.ndarray:
    w = np.zeros((NUM_CAPSULES, skel.NUM_JOINTS), np.float32)
    for c, row in enumerate(_CAPSULE_TABLE):
        for j, v in row[1 + end].items():
            w[c, j] = v
    return w


# [2, C, 17]: each capsule's ends a and b as joint weights (``ENDS[0] @ pose`` is a).
ENDS = np.stack([_weights(0), _weights(1)])
BASE_RADII = np.array([c[3] for c in _CAPSULE_TABLE], np.float32)
_BASE_MATERIAL = np.array([c[4] for c in _CAPSULE_TABLE], np.int32)
_SWAP = {"_l": "_r", "_r": "_l"}
_MIRROR = np.array([_IDX[n[:-2] + _SWAP.get(n[-2:], n[-2:])] for n in CAPSULES])


class Body(NamedTuple):
    """Per-example body and clothing (``appearance`` makes them). B examples, C capsules,
    M materials.

    Attributes:
      radii: ``[B, C]`` mm, capsule radii. bone_scale: ``[B, 16]`` bone length factors in
        ``H36M17_BONES`` order (1 keeps the pose's). materials: ``[B, C]`` int32 index into
        ``MATERIALS``. colours: ``[B, M, 2, 3]`` RGB in [0, 1], base and pattern colour.
      pattern: ``[B, M]`` int32: 0 plain, 1 stripes across the capsule, 2 along it, 3
        checks. period: ``[B, M]`` mm.
    """

    radii: jax.Array
    bone_scale: jax.Array
    materials: jax.Array
    colours: jax.Array
    pattern: jax.Array
    period: jax.Array


_SHIRTS = np.array([[0.9, 0.9, 0.88], [0.65, 0.65, 0.65], [0.3, 0.3, 0.32], [0.1, 0.1, 0.1],
                    [0.12, 0.16, 0.35], [0.5, 0.1, 0.12], [0.35, 0.38, 0.2], [0.45, 0.6, 0.8],
                    [0.78, 0.7, 0.55], [0.2, 0.45, 0.3]], np.float32)  # fmt: skip
_TROUSERS = np.array([[0.18, 0.24, 0.38], [0.08, 0.08, 0.09], [0.4, 0.4, 0.42], [0.6, 0.53, 0.38],
                      [0.1, 0.12, 0.25], [0.35, 0.25, 0.18]], np.float32)  # fmt: skip
_SHOES = np.array([[0.06, 0.06, 0.06], [0.85, 0.85, 0.85], [0.3, 0.18, 0.1], [0.4, 0.4, 0.4]],
                  np.float32)  # fmt: skip
_HAIR = np.array([[0.07, 0.05, 0.04], [0.22, 0.13, 0.07], [0.45, 0.3, 0.15], [0.8, 0.65, 0.4],
                  [0.6, 0.6, 0.6]], np.float32)  # fmt: skip
_SKIN = np.array([[0.96, 0.8, 0.69], [0.36, 0.23, 0.16]], np.float32)


def _symmetric(x, perm):
    return (x + x[..., perm]) / 2


def _appearance_one(key, wild: bool) -> Body:
    u = Draws(key, 160)
    m = len(MATERIALS)
    girth = u((), 0.75, 1.25) if wild else jnp.clip(1 + 0.07 * u.normal(), 0.85, 1.15)
    spread = 0.1 if wild else 0.04
    jitter = _symmetric(1 + spread * u.normal((NUM_CAPSULES,)), _MIRROR)
    head = np.arange(NUM_CAPSULES) == _IDX["head"]
    radii = jnp.where(head, BASE_RADII * u((), 0.9, 1.12 if wild else 1.05),
                      BASE_RADII * girth * jitter)  # fmt: skip
    # r_hip, thigh, shank (and left), spine, thorax, neck, head, clavicle, upper arm, forearm.
    pair = u((10,), 0.88, 1.12) if wild else jnp.ones(10)
    bone_scale = pair[np.array([0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 8, 9])]
    sleeves, shorts = u() < 0.5, u() < (0.35 if wild else 0.15)
    materials = jnp.asarray(_BASE_MATERIAL)
    materials = jnp.where(materials == _SLEEVE, jnp.where(sleeves, SHIRT, SKIN), materials)
    materials = jnp.where(materials == _LEG, jnp.where(shorts, SKIN, TROUSERS), materials)
    skin = _SKIN[0] + u() * (_SKIN[1] - _SKIN[0])
    if wild:  # shirt, trousers, shoes x (base, pattern): any hue, most saturations
        clothes = hsv(u((3, 2)), u((3, 2), 0.1, 1.0), u((3, 2), 0.1, 0.95))
    else:  # muted palette colours; the pattern colour is a darker or lighter shade
        base = jnp.stack([u.pick(_SHIRTS), u.pick(_TROUSERS), u.pick(_SHOES)])
        base = jnp.clip(base + u((3, 3), -0.05, 0.05), 0, 1)
        shade = jnp.where(jnp.mean(base, -1, keepdims=True) > 0.5, 0.6 * base, 0.5 + 0.5 * base)
        clothes = jnp.stack([base, shade], 1)
    hair = u.pick(_HAIR)
    colours = jnp.concatenate(
        [jnp.stack([skin, skin])[None], clothes, jnp.stack([hair, 0.8 * hair])[None]]
    )
    kinds = 1 + jnp.minimum((u((m,)) * 3).astype(jnp.int32), 2)
    plain = u((m,)) < (0.25 if wild else 0.6)
    clothed = np.array([i in (SHIRT, TROUSERS) for i in range(m)])
    pattern = jnp.where(clothed & ~plain, kinds, 0).astype(jnp.int32)
    period = u((m,), 50.0, 160.0)
    return Body(radii, bone_scale, materials.astype(jnp.int32), colours, pattern, period)


def appearance(subject_ids, key: jax.Array, domain: str) -> Body:
    """Body and clothing per example from ``subject_ids [B]`` int and one ``key``.

    The same id gives the same body with the same key (a studio subject wears the same
    clothes in every frame, like Human3.6M's); wild bodies vary more (pass a fresh id per
    example for a new person each time, as ``render.render_batch`` does).
    """
    wild = get_domain(domain).clutter
    ids = jnp.asarray(subject_ids)
    if ids.ndim != 1 or not jnp.issubdtype(ids.dtype, jnp.integer):
        raise ValueError(f"expected subject_ids [B] int, found {ids.shape} {ids.dtype}")
    return _appearance(ids, key, wild=wild)


@functools.partial(jax.jit, static_argnames="wild")
def _appearance(ids, key, *, wild: bool) -> Body:
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(ids)
    return jax.vmap(lambda k: _appearance_one(k, wild))(keys)
