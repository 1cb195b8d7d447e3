"""SynthPose render scenes: the domains and everything around the body, per clip.

    dom = render_scene.get_domain("wild")
    u = render_scene.Draws(key, 256)       # the clip's uniform draws, taken in order
    scene = render_scene.draw_scene(poses, up, rays, u, size, dom)
    bg, z_floor = render_scene.background(scene, pose[0])   # per frame, behind the body
    rgb = render_scene.sensor(rgb, u, noise_key, dom)

This module holds ``Domain`` / ``DOMAINS`` (how a domain views, crops, lights and
backdrops a person), the draw helpers every render module shares (``Draws``, ``hsv``,
``unit``), and the scene: the light (direction, ambient, tint), the wall in crop
coordinates (a soft gradient in ``studio``; random sinusoids, discs and rectangles in
``wild``), the floor plane ray-cast in 3D ``FLOOR_BELOW_MM`` below the clip's lowest joint
(normal = world up, plain or checked, fading out towards the horizon; ``wild`` scenes have
no floor 40 % of the time), the blob shadow under the pelvis and the sensor's colour gain
and noise. Rays, capsules and the public API are in ``posejax.data.render``; bodies and
clothes in ``posejax.data.render_appearance`` (which imports this module, never the
reverse).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import rng

FLOOR_BELOW_MM = 75.0  # floor below the lowest joint (ankles are ~80 mm above it)


@dataclasses.dataclass(frozen=True)
class Domain:
    """How a domain draws views, crops and backgrounds (see ``posejax.data.render``).

    Attributes:
      box_style: ``person_box`` style. margin: its margin. shift: crop centre jitter, uniform
        in +-shift x side per axis. log2_scale: crop scale jitter, ``s * 2**U(lo, hi)``.
      yaw_deg, elevation_deg, roll_deg, distance_mm: re-viewing of the pose (``None``: as
        given). noise: sensor noise standard deviation. clutter: cluttered wall.
    """

    box_style: str
    margin: float
    shift: float
    log2_scale: tuple[float, float]
    yaw_deg: float | None = None
    elevation_deg: tuple[float, float] = (0.0, 0.0)
    roll_deg: float = 0.0
    distance_mm: tuple[float, float] = (0.0, 0.0)
    noise: float = 0.01
    clutter: bool = False


DOMAINS = {
    "studio": Domain("h36m", 0.2, 0.03, (0.0, 0.1)),
    "wild": Domain("mpii", 0.0, 0.15, (-0.5, 0.3), 180.0, (-5.0, 25.0), 8.0, (2500.0, 9000.0),
                   noise=0.02, clutter=True),
}  # fmt: skip


def get_domain(name: str) -> Domain:
    if name not in DOMAINS:
        raise ValueError(f"unknown render domain {name!r}; expected one of {list(DOMAINS)}")
    return DOMAINS[name]


def hsv(h, s, v):
    """HSV in [0, 1] -> RGB ``[..., 3]``."""
    k = (jnp.array([5.0, 3.0, 1.0]) + h[..., None] * 6) % 6
    return v[..., None] * (1 - s[..., None] * jnp.clip(jnp.minimum(k, 4 - k), 0, 1))


def unit(v, axis=-1):
    return v / jnp.maximum(jnp.linalg.norm(v, axis=axis, keepdims=True), 1e-6)


class Draws:
    """Slices of one uniform ``[n]`` draw: one threefry per example instead of one per
    variable (two dozen ``jax.random`` calls doubled XLA:CPU compile time)."""

    def __init__(self, key, n: int):
        self._u, self._next = jax.random.uniform(key, (n,)), 0

    def __call__(self, shape=(), lo=0.0, hi=1.0):
        size = int(np.prod(shape))
        start, self._next = self._next, self._next + size
        if self._next > self._u.shape[0]:
            raise RuntimeError(f"render: more than {self._u.shape[0]} draws requested")
        return lo + (hi - lo) * self._u[start : self._next].reshape(shape)

    def normal(self, shape=()):
        return jnp.sqrt(-2 * jnp.log(self(shape, 1e-7, 1.0))) * jnp.cos(2 * np.pi * self(shape))

    def pick(self, table):
        return jnp.asarray(table)[
            jnp.minimum((self() * len(table)).astype(jnp.int32), len(table) - 1)
        ]


class Scene(NamedTuple):
    """Per-clip lighting and background, shared by every frame."""

    light: jax.Array  # [3] unit, towards the light, camera frame
    ambient: jax.Array  # []
    tint: jax.Array  # [3] light colour
    wall: jax.Array  # [3, P]
    floor: jax.Array  # [3, P], lit
    floor_alpha: jax.Array  # [P] 0 where the ray misses the floor
    floor_point: jax.Array  # [3, P] mm
    floor_height: jax.Array  # [] mm along up
    up: jax.Array  # [3] world up, camera frame


def _wall(u: Draws, size: int, dom: Domain):
    """``[3, P]`` wall in crop coordinates (x, y in [-1, 1]): a soft gradient (studio) or
    random sinusoids and clutter shapes (wild)."""
    g = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size * 2 - 1
    x = jnp.broadcast_to(g[None, :], (size, size)).reshape(-1)
    y = jnp.broadcast_to(g[:, None], (size, size)).reshape(-1)
    wall_hsv = u((3, 3))
    if not dom.clutter:
        base = hsv(wall_hsv[0, 0], 0.15 * wall_hsv[0, 1], 0.25 + 0.5 * wall_hsv[0, 2])
        ramp = 1 + u((), -0.25, 0.25) * y - 0.15 * (x**2 + y**2)
        return base[:, None] * ramp[None]
    cols = hsv(wall_hsv[:, 0], wall_hsv[:, 1], 0.15 + 0.8 * wall_hsv[:, 2])  # [3, 3]

    # Two layers of 6 plane waves sin(f (x cos + y sin) + phase), f in cycles per half crop;
    # each splits into sin/cos of x times cos/sin of y, i.e. one small matmul per layer.
    n_waves = 6
    freq = np.pi * u((2, n_waves, 1), 0.5, 9.0)
    angle = u((2, n_waves, 1), 0, 2 * np.pi)
    phase = u((2, n_waves, 1), 0, 2 * np.pi)
    fx, fy = freq * jnp.cos(angle) * g, freq * jnp.sin(angle) * g + phase  # [2, W, S]
    rows = jnp.concatenate([jnp.cos(fy), jnp.sin(fy)], 1) / jnp.sqrt(jnp.tile(freq, (1, 2, 1)))
    cols_x = jnp.concatenate([jnp.sin(fx), jnp.cos(fx)], 1)
    waves = jnp.einsum("lwi,lwj->lij", rows, cols_x).reshape(2, -1)
    mix = 0.5 + 0.5 * jnp.tanh(waves)  # [2, P]
    wall = cols[0][:, None] + mix[0] * (cols[1] - cols[0])[:, None]
    wall = wall + mix[1] ** 3 * (cols[2][:, None] - wall)
    n_shapes = 8
    centre = u((n_shapes, 2, 1), -1.2, 1.2)
    half = u((n_shapes, 2, 1), 0.04, 0.45)
    rot = u((n_shapes, 1), 0, np.pi)
    shape_hsv = u((n_shapes, 3))
    dx, dy = x - centre[:, 0], y - centre[:, 1]
    su = (jnp.cos(rot) * dx + jnp.sin(rot) * dy) / half[:, 0]
    sv = (-jnp.sin(rot) * dx + jnp.cos(rot) * dy) / half[:, 1]
    disc = np.arange(n_shapes)[:, None] % 2 == 0  # discs and rectangles alternate
    inside = jnp.where(disc, su**2 + sv**2 < 1, (jnp.abs(su) < 1) & (jnp.abs(sv) < 1))
    top = jnp.max(jnp.where(inside, jnp.arange(1, n_shapes + 1)[:, None], 0), axis=0)  # last wins
    shape_cols = hsv(shape_hsv[:, 0], shape_hsv[:, 1], 0.1 + 0.85 * shape_hsv[:, 2])
    shaded = shape_cols.T[:, jnp.maximum(top - 1, 0)] * (0.85 + 0.15 * y)
    return jnp.where(top > 0, shaded, wall)


def draw_scene(poses, up, d, u: Draws, size: int, dom: Domain) -> Scene:
    """The light, floor and wall of a clip ``poses [T, 17, 3]`` mm (world ``up [3]``) seen
    along the rays ``d [3, P]``."""
    towards_camera = jnp.array([0.0, 0.0, -1.0])
    if dom.clutter:
        light = unit(u.normal((3,)) + 0.8 * up + 0.7 * towards_camera)
        ambient = u((), 0.25, 0.55)
        tint = hsv(u(), u((), 0, 0.25), jnp.ones(()))
    else:
        side = jnp.stack([u((), -0.5, 0.5), 0.0, 0.0])
        light = unit(0.8 * up + side + u((), 0.3, 0.9) * towards_camera)
        ambient = u((), 0.3, 0.45)
        tint = jnp.ones(3)
    height = jnp.min(poses @ up) - FLOOR_BELOW_MM  # the floor, below the clip's lowest joint
    du = up @ d
    t = height / jnp.where(du < 0, du, -1.0)
    # Wild scenes have no floor 40 % of the time; the floor fades out towards the horizon.
    has_floor = (height < 0) & ((u() < 0.6) | (not dom.clutter))
    alpha = jnp.where(has_floor & (du < 0), jnp.clip(-du * 30, 0, 1), 0.0)
    point = t * d
    floor_hsv = u((2, 3))
    cols = hsv(floor_hsv[:, 0], 0.3 * floor_hsv[:, 1], 0.2 + 0.5 * floor_hsv[:, 2])  # [2, 3]
    e1 = unit(jnp.cross(up, jnp.array([0.0, 0.0, 1.0])))
    e2 = jnp.cross(up, e1)
    tile = u((), 300.0, 1000.0)
    checks = (jnp.floor(e1 @ point / tile) + jnp.floor(e2 @ point / tile)) % 2 == 1
    checks = checks & dom.clutter & (u() < 0.5)
    floor = jnp.where(checks, cols[1][:, None], cols[0][:, None])
    floor = floor * (tint * (ambient + (1 - ambient) * jnp.maximum(up @ light, 0)))[:, None]
    wall = _wall(u, size, dom)
    return Scene(light, ambient, tint, wall, floor, alpha, point, height, up)


def background(scene: Scene, root):
    """One frame's ``(rgb [3, P], z [P] mm)`` behind the body: the wall, or the floor with a
    blob shadow under the pelvis ``root [3]`` mm (z is inf on the wall)."""
    foot = root - (root @ scene.up - scene.floor_height) * scene.up
    gap = jnp.sum((scene.floor_point - foot[:, None]) ** 2, 0)
    floor = scene.floor * (1 - 0.45 * jnp.exp(-gap / 400.0**2))
    bg = scene.wall + scene.floor_alpha * (floor - scene.wall)
    z_floor = jnp.where(scene.floor_alpha > 0, scene.floor_point[2], jnp.inf)
    return bg, z_floor


def sensor(rgb, u: Draws, key, dom: Domain):
    """``rgb [T, 3, P]`` through the clip's camera: a per-channel gain (from ``u``), then
    uniform noise of standard deviation ``dom.noise`` (from ``key``), clipped to [0, 1]."""
    gain = 1 + u((3, 1), -1, 1) * (0.2 if dom.clutter else 0.05)
    noise = (rng.uniform(key, rgb.shape[-2:]) - 0.5) * (np.sqrt(12) * dom.noise)
    return jnp.clip(rgb * gain + noise, 0, 1)
