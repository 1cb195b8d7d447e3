"""SynthPose images rendered on the device: capsule bodies ray-cast at the crop, over studio
or cluttered backgrounds (DESIGN.md rule 5). Pure JAX, jittable, vmapped over the batch.

    body = render.appearance(subject_ids, jax.random.key(0), "studio")
    out = render.render(pose3d_cam, intrinsics, body, keys, size=128, domain="studio")
    out.images   # [B, 128, 128, 3] float32 RGB in [0, 1]
    out.kp2d     # [B, 17, 2] px in the crop; out.visible: [B, 17] bool; out.box: the crop

    out = render.render_batch(data, idx, key, size=128, domain="wild")  # inside a jitted step

Conventions. Poses are ``[..., 17, 3]`` mm in the camera frame (x right, y down, z forward),
Human3.6M-17 order; intrinsics ``[B, 9]`` (fx, fy, cx, cy, k1, k2, k3, p1, p2; px) or
``[B, 4]``. Pixel ``(i, j)`` of a crop covers ``[j, j + 1) x [i, i + 1)`` and its ray passes
through its centre, undistorted with the camera's distortion, so ``camera.project`` (what
``PoseData.kp2d_gt`` holds) lands on the drawn body. A crop is a ``Box``: centre ``[B, 2]``
px and scale ``[B]`` in the stacked-hourglass "MPII scale" unit of 200 px (side
``200 * scale`` px, shared/spec/hourglass.md section 3.2); an original-image point ``x``
is at ``(x - centre + 100 scale) * size / (200 scale)`` crop px. The crop is ray-cast
directly (rays through the crop window), never rendered full-frame and resampled.

Scene. The body is ``len(CAPSULES)`` capsules (a segment and a radius) placed on the joints:
torso (a central and two side capsules), hip bar, clavicles, limbs, feet, neck and head;
each pixel ray meets each capsule analytically (quadratic on the infinite cylinder, then the
end spheres) and the nearest hit wins, so near limbs hide far ones. Shading is Lambert from
the capsule normal and a light direction plus ambient. Each capsule has a material (skin,
shirt, trousers, shoes, hair) whose base and pattern colours, pattern (plain, stripes across
or along the limb, checks) and period (mm) come from ``appearance``. Behind the body: a
floor plane ray-cast in 3D (below the lowest joint, normal = world up; a soft blob shadow
under the pelvis) and a wall in crop coordinates.

Domains (``DOMAINS``). ``studio``: Human3.6M-like: the pose and camera as given, square
box around the projected skeleton (20 % margin, little jitter, the whole body in view),
muted clothes, a near-plain wall. ``wild``: the pose is re-viewed (yaw about world up
through the root, elevation, roll, distance 2.5-9 m), bone lengths are rescaled
(``Body.bone_scale``), bodies and colours spread wider, the box follows the MPII
convention (centre y += 15 s, s *= 1.25) with jitter that truncates the body at the crop
border, and the wall is cluttered (random sinusoids, gradients, discs, rectangles). The
wild 3D pose never leaves this module: ``Render`` carries images and 2D labels only, and a
method must not use the input 3D as a label for wild images.

Randomness is a pure function of the per-example key (per clip for ``render_clip``: the
view, box, light, background and sensor noise are drawn once per clip). Images are
differentiable in the pose, body and colours inside each surface (edges are hard).
At 128 px one example costs H x W x 18 ray-capsule tests; on a 2-core CPU B = 64 renders in
a fraction of a second (``benchmarks/render.py``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import camera, geometry, rng
from posejax.core import skeleton as skel

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


_W_A, _W_B = _weights(0), _weights(1)
BASE_RADII = np.array([c[3] for c in _CAPSULE_TABLE], np.float32)
_BASE_MATERIAL = np.array([c[4] for c in _CAPSULE_TABLE], np.int32)
_SWAP = {"_l": "_r", "_r": "_l"}
_MIRROR = np.array([_IDX[n[:-2] + _SWAP.get(n[-2:], n[-2:])] for n in CAPSULES])
_FOREARMS = np.array([_IDX["forearm_l"], _IDX["forearm_r"]])
_FOREARM = np.isin(np.arange(NUM_CAPSULES), _FOREARMS)
assert CAPSULES[-2:] == ("foot_l", "foot_r")
_KNEES = np.array([5, 2])  # of the feet
HAND_MM, FOOT_MM = 75.0, 140.0  # hand past the wrist; toe ahead of the ankle
FLOOR_BELOW_MM = 75.0  # floor below the lowest joint (ankles are ~80 mm above it)
# Bone b (H36M17_BONES order) lies on the chain from the root to joint k: _CHAIN[k, b] = 1.
_CHAIN = np.zeros((skel.NUM_JOINTS, len(skel.H36M17_BONES)), np.float32)
for _k in range(skel.NUM_JOINTS):
    _j = _k
    while skel.H36M17_PARENTS[_j] >= 0:
        _CHAIN[_k, int(np.flatnonzero(skel.H36M17_BONES[:, 0] == _j)[0])] = 1.0
        _j = skel.H36M17_PARENTS[_j]


@dataclasses.dataclass(frozen=True)
class Domain:
    """How a domain draws views, crops and backgrounds (see the module docstring).

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


class Box(NamedTuple):
    """Square crop: ``centre [..., 2]`` px and ``scale [...]`` (side ``200 * scale`` px)."""

    centre: jax.Array
    scale: jax.Array


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


class Render(NamedTuple):
    """Rendered crops; leading axes ``[B]`` (``render``) or ``[B, T]`` (``render_clip``).

    Attributes:
      images: ``[..., H, W, 3]`` float32 RGB in [0, 1]. kp2d: ``[..., 17, 2]`` crop px.
      visible: ``[..., 17]`` bool: inside the crop and in front of the camera.
      box: the crop in original-image px (``[B]``: one per clip).
      part: ``[..., H, W]`` int32 capsule index (``CAPSULES``), -1 off the body (aux only).
      depth: ``[..., H, W]`` float32 z of the nearest surface (body or floor), mm; inf on
        the wall (aux only).
    """

    images: jax.Array
    kp2d: jax.Array
    visible: jax.Array
    box: Box
    part: jax.Array | None = None
    depth: jax.Array | None = None


def person_box(kp2d, margin: float = 0.2, style: str = "h36m") -> Box:
    """Square crop around 2D joints ``kp2d [..., J, 2]`` px.

    ``h36m``: centred on the joints' bounding box, side ``(1 + margin) x`` its longer
    edge. ``mpii``: the stacked-hourglass rule on an MPII-like annotation (scale = the
    longer edge ``x (1 + margin) / 200``, centre = box centre): ``c_y += 15 s``,
    ``s *= 1.25`` (shared/spec/hourglass.md section 3.2).
    """
    lo, hi = jnp.min(kp2d, axis=-2), jnp.max(kp2d, axis=-2)
    centre = (lo + hi) / 2
    scale = jnp.max(hi - lo, axis=-1) * (1 + margin) / 200
    if style == "h36m":
        return Box(centre, scale)
    if style == "mpii":
        return Box(centre + jnp.stack([0 * scale, 15 * scale], -1), 1.25 * scale)
    raise ValueError(f"unknown box style {style!r}; expected 'h36m' or 'mpii'")


def to_crop(points, box: Box, size: int):
    """Original-image px ``[..., J, 2]`` -> crop px of ``box`` (``[...]`` leading axes)."""
    side = 200 * box.scale[..., None, None]
    return (points - box.centre[..., None, :] + side / 2) * size / side


def _hsv(h, s, v):
    """HSV in [0, 1] -> RGB ``[..., 3]``."""
    k = (jnp.array([5.0, 3.0, 1.0]) + h[..., None] * 6) % 6
    return v[..., None] * (1 - s[..., None] * jnp.clip(jnp.minimum(k, 4 - k), 0, 1))


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


class _Draws:
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


def _appearance_one(key, wild: bool) -> Body:
    u = _Draws(key, 160)
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
        clothes = _hsv(u((3, 2)), u((3, 2), 0.1, 1.0), u((3, 2), 0.1, 0.95))
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
    example for a new person each time, as ``render_batch`` does).
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


def _unit(v, axis=-1):
    return v / jnp.maximum(jnp.linalg.norm(v, axis=axis, keepdims=True), 1e-6)


def _proportions(pose, bone_scale):
    """``pose [..., 17, 3]`` with every bone scaled by ``bone_scale [16]``, root fixed."""
    bones = pose[..., skel.H36M17_BONES[:, 0], :] - pose[..., skel.H36M17_BONES[:, 1], :]
    return pose[..., :1, :] + jnp.einsum("kb,...bi->...ki", _CHAIN, bones * bone_scale[:, None])


def _view(poses, up, u: _Draws, dom: Domain):
    """Wild re-viewing of a clip ``[T, 17, 3]``: yaw about world ``up`` through the mean
    root, elevation (positive: seen from above) and roll, then the root moved along its
    ray to a new distance. Returns the poses and world up in the new camera frame."""
    if dom.yaw_deg is None:
        return poses, up
    yaw = jnp.deg2rad(u((), -dom.yaw_deg, dom.yaw_deg))
    elev = jnp.deg2rad(u((), *dom.elevation_deg))
    roll = jnp.deg2rad(dom.roll_deg * u.normal())
    dist = u((), *dom.distance_mm)
    r = geometry.axis_rotation(2, roll) @ geometry.axis_rotation(0, elev)
    r = r @ geometry.axis_angle_to_matrix(up * yaw)
    root = jnp.mean(poses[:, 0], axis=0)
    root_new = root * dist / jnp.linalg.norm(root)
    return (poses - root) @ r.T + root_new, r @ up


def _capsules(pose, radii):
    """Capsule ends ``a, b [C, 3]`` mm and the wrist's distance along each forearm ``[C]``."""
    a, b = jnp.asarray(_W_A) @ pose, jnp.asarray(_W_B) @ pose
    fwd = _unit(jnp.cross(pose[4] - pose[1], pose[8] - pose[0]))  # left x up = forward
    # Forearms: extended past the wrist by the hand (only there: a foot has a == b here,
    # and a norm at zero has a NaN gradient even where it is masked out).
    elbow, wrist = a[_FOREARMS], b[_FOREARMS]
    arm = jnp.zeros(NUM_CAPSULES).at[_FOREARMS].set(jnp.linalg.norm(wrist - elbow, axis=-1))
    b = b.at[_FOREARMS].set(wrist + HAND_MM * _unit(wrist - elbow))
    # Feet (the last two capsules): heel and toe from the ankle, the shank and forward.
    ankle, down = a[-2:], _unit(a[-2:] - pose[_KNEES])
    toe_dir = _unit(fwd - (down @ fwd)[:, None] * down)
    lift = 0.9 * radii[-2:, None] * down
    a = jnp.concatenate([a[:-2], ankle + lift - 30 * toe_dir])
    b = jnp.concatenate([b[:-2], ankle + lift + FOOT_MM * toe_dir])
    return a, b, jnp.where(_FOREARM, arm, jnp.inf), fwd


def _sqrt(x):
    """sqrt of ``max(x, 0)`` with a finite gradient everywhere (rays that miss)."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _cast_one(a, b, r, d):
    """Ray ``t d`` (camera at the origin, ``d [3, P]`` unit) against the capsule ``a, b [3]``
    mm, radius ``r``: distance ``t [P]`` mm to the first hit, inf on a miss."""
    length = jnp.maximum(jnp.linalg.norm(b - a), 1e-3)
    u = (b - a) / length
    ud, ad = u @ d, a @ d
    ua = u @ a
    perp2 = jnp.sum(jnp.cross(u, a) ** 2)  # squared distance of the camera from the axis
    # |t d - a|^2 - (t ud - ua)^2 = r^2 on the infinite cylinder: A t^2 - 2 h t + c = 0.
    big_a, half_b = 1 - ud**2, ad - ud * ua
    disc = half_b**2 - big_a * (perp2 - r**2)
    t_side = (half_b - _sqrt(disc)) / jnp.maximum(big_a, 1e-6)
    y = t_side * ud - ua
    side = (disc >= 0) & (y >= 0) & (y <= length)
    # Otherwise the end sphere on the side the cylinder was entered (a if y < 0, else b).
    de = jnp.where(y < 0, ad, ad + length * ud)
    disc_end = de**2 - jnp.where(y < 0, a @ a, b @ b) + r**2
    t_end = de - _sqrt(disc_end)
    t = jnp.where(side, t_side, jnp.where((disc >= 0) & (disc_end >= 0), t_end, jnp.inf))
    return jnp.where(t > 1.0, t, jnp.inf)


def _nearest(a, b, r, d):
    """Nearest hit over capsules ``a, b [C, 3]``, ``r [C]``: ``(t [P] mm, capsule [P])``.

    A scan over the capsules keeps one ``[P]`` depth buffer: 2-3x faster on a CPU than a
    ``[C, P]`` broadcast and its arg-min, which XLA does not fuse."""

    def step(carry, capsule):
        best, idx, c = carry
        t = _cast_one(*capsule, d)
        nearer = t < best
        return (jnp.where(nearer, t, best), jnp.where(nearer, c, idx), c + 1), None

    init = (jnp.full(d.shape[1:], jnp.inf), jnp.zeros(d.shape[1:], jnp.int32), jnp.int32(0))
    (best, idx, _), _ = jax.lax.scan(step, init, (a, b, r))
    return best, idx


def _undistort(x, y, k):
    """``camera.undistort`` on separate ``x, y [P]`` normalised coordinates: the same
    fixed-point iteration, 60x faster on a CPU than its ``[P, 2]`` layout."""
    u, v = x, y
    for _ in range(5):
        r2 = u * u + v * v
        scale = 1 + k[4] * r2 + k[5] * r2**2 + k[6] * r2**3 + k[7] * u + k[8] * v
        u, v = (x - k[7] * r2) / scale, (y - k[8] * r2) / scale
    return u, v


def _rays(box: Box, k, size: int):
    """Unit rays ``[3, P]`` (P = size^2, row-major) through the crop's pixel centres."""
    side = 200 * box.scale
    g = (jnp.arange(size, dtype=jnp.float32) + 0.5) * side / size - side / 2
    x = jnp.broadcast_to((box.centre[0] + g[None, :] - k[2]) / k[0], (size, size)).reshape(-1)
    y = jnp.broadcast_to((box.centre[1] + g[:, None] - k[3]) / k[1], (size, size)).reshape(-1)
    if k.shape[-1] == 9:
        x, y = _undistort(x, y, k)
    return _unit(jnp.stack([x, y, jnp.ones_like(x)]), axis=0)


class _Scene(NamedTuple):
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


def _wall(u: _Draws, size: int, dom: Domain):
    """``[3, P]`` wall in crop coordinates (x, y in [-1, 1]): a soft gradient (studio) or
    random sinusoids and clutter shapes (wild)."""
    g = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size * 2 - 1
    x = jnp.broadcast_to(g[None, :], (size, size)).reshape(-1)
    y = jnp.broadcast_to(g[:, None], (size, size)).reshape(-1)
    hsv = u((3, 3))
    if not dom.clutter:
        base = _hsv(hsv[0, 0], 0.15 * hsv[0, 1], 0.25 + 0.5 * hsv[0, 2])
        ramp = 1 + u((), -0.25, 0.25) * y - 0.15 * (x**2 + y**2)
        return base[:, None] * ramp[None]
    cols = _hsv(hsv[:, 0], hsv[:, 1], 0.15 + 0.8 * hsv[:, 2])  # [3, 3]

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
    shape_cols = _hsv(shape_hsv[:, 0], shape_hsv[:, 1], 0.1 + 0.85 * shape_hsv[:, 2])
    shaded = shape_cols.T[:, jnp.maximum(top - 1, 0)] * (0.85 + 0.15 * y)
    return jnp.where(top > 0, shaded, wall)


def _scene(poses, up, d, u: _Draws, size: int, dom: Domain) -> _Scene:
    towards_camera = jnp.array([0.0, 0.0, -1.0])
    if dom.clutter:
        light = _unit(u.normal((3,)) + 0.8 * up + 0.7 * towards_camera)
        ambient = u((), 0.25, 0.55)
        tint = _hsv(u(), u((), 0, 0.25), jnp.ones(()))
    else:
        side = jnp.stack([u((), -0.5, 0.5), 0.0, 0.0])
        light = _unit(0.8 * up + side + u((), 0.3, 0.9) * towards_camera)
        ambient = u((), 0.3, 0.45)
        tint = jnp.ones(3)
    height = jnp.min(poses @ up) - FLOOR_BELOW_MM  # the floor, below the clip's lowest joint
    du = up @ d
    t = height / jnp.where(du < 0, du, -1.0)
    # Wild scenes have no floor 40 % of the time; the floor fades out towards the horizon.
    has_floor = (height < 0) & ((u() < 0.6) | (not dom.clutter))
    alpha = jnp.where(has_floor & (du < 0), jnp.clip(-du * 30, 0, 1), 0.0)
    point = t * d
    hsv = u((2, 3))
    cols = _hsv(hsv[:, 0], 0.3 * hsv[:, 1], 0.2 + 0.5 * hsv[:, 2])  # [2, 3]
    e1 = _unit(jnp.cross(up, jnp.array([0.0, 0.0, 1.0])))
    e2 = jnp.cross(up, e1)
    tile = u((), 300.0, 1000.0)
    checks = (jnp.floor(e1 @ point / tile) + jnp.floor(e2 @ point / tile)) % 2 == 1
    checks = checks & dom.clutter & (u() < 0.5)
    floor = jnp.where(checks, cols[1][:, None], cols[0][:, None])
    floor = floor * (tint * (ambient + (1 - ambient) * jnp.maximum(up @ light, 0)))[:, None]
    wall = _wall(u, size, dom)
    return _Scene(light, ambient, tint, wall, floor, alpha, point, height, up)


def _triangle(x):
    """Triangle wave of period 1 in [-1, 1] (a cheap sine)."""
    return 1 - 4 * jnp.abs(x - jnp.floor(x) - 0.5)


def _shade(pose, d, body: Body, scene: _Scene):
    """One frame: ``(rgb [3, P], part [P], z [P])`` with the floor and wall behind."""
    a, b, split, fwd = _capsules(pose, body.radii)
    t_hit, idx = _nearest(a, b, body.radii, d)
    hit = jnp.isfinite(t_hit)
    p = jnp.where(hit, t_hit, 1.0) * d  # [3, P]
    # Gathers along the long minor axis: one [K, C] table of the capsules, one [K, M] of the
    # materials (a [P, 3] layout ran 2x slower on a CPU).
    axis = _unit(b - a)
    length = jnp.linalg.norm(b - a, axis=-1)
    caps = jnp.concatenate([a.T, axis.T, length[None], split[None]])[:, idx]  # [8, P]
    ai, ui = caps[0:3], caps[3:6]
    s = jnp.clip(jnp.sum((p - ai) * ui, 0), 0, caps[6])
    n = _unit(p - ai - s * ui, axis=0)
    mat = body.materials[idx]
    mat = jnp.where(s > caps[7], SKIN, mat)  # the hand beyond the wrist
    head_up = _unit(pose[10] - pose[9])
    hair = (head_up @ n > 0.35) | (fwd @ n < -0.4)
    mat = jnp.where((idx == _IDX["head"]) & hair, HAIR, mat)
    looks = jnp.concatenate(
        [body.colours.reshape(-1, 6).T, body.period[None], body.pattern[None].astype(jnp.float32)]
    )[:, mat]  # [8, P]: base rgb, pattern rgb, period, pattern kind
    # Solid pattern coordinates: along the capsule, and across the body (left + forward).
    across = (_unit(pose[4] - pose[1]) + 0.5 * fwd) @ (p - pose[0][:, None])
    wu, wv = _triangle((s + 37.0 * idx) / looks[6]), _triangle(across / looks[6])
    pat = looks[7]
    w = jnp.where(pat == 1, wu, jnp.where(pat == 2, wv, wu * wv))
    m = jnp.where(pat == 0, 0.0, jnp.clip(0.5 + 2 * w, 0, 1))
    albedo = looks[0:3] + m * (looks[3:6] - looks[0:3])
    lit = scene.ambient + (1 - scene.ambient) * jnp.maximum(scene.light @ n, 0)
    rgb = albedo * lit * scene.tint[:, None]
    # Blob shadow on the floor under the pelvis.
    foot = pose[0] - (pose[0] @ scene.up - scene.floor_height) * scene.up
    gap = jnp.sum((scene.floor_point - foot[:, None]) ** 2, 0)
    floor = scene.floor * (1 - 0.45 * jnp.exp(-gap / 400.0**2))
    bg = scene.wall + scene.floor_alpha * (floor - scene.wall)
    z_floor = jnp.where(scene.floor_alpha > 0, scene.floor_point[2], jnp.inf)
    return jnp.where(hit, rgb, bg), jnp.where(hit, idx, -1), jnp.where(hit, p[2], z_floor)


def _clip_one(poses, k, up, body: Body, key, box, size: int, dom: Domain, aux: bool):
    """One clip ``poses [T, 17, 3]`` (one camera ``k``, world ``up [3]``) -> ``Render``."""
    k_draws, k_noise = jax.random.split(key)
    u = _Draws(k_draws, 256)
    poses, up = _view(poses, up, u, dom)
    poses = _proportions(poses, body.bone_scale)
    kp = camera.project_pinhole(poses, k)
    if box is None:
        box = person_box(kp.reshape(-1, 2), dom.margin, dom.box_style)
        shift = u((2,), -dom.shift, dom.shift) * 200 * box.scale
        box = Box(box.centre + shift, box.scale * 2 ** u((), *dom.log2_scale))
    d = _rays(box, k, size)
    scene = _scene(poses, up, d, u, size, dom)
    rgb, part, depth = jax.vmap(lambda p: _shade(p, d, body, scene))(poses)
    gain = 1 + u((3, 1), -1, 1) * (0.2 if dom.clutter else 0.05)
    noise = (rng.uniform(k_noise, (3, size * size)) - 0.5) * (np.sqrt(12) * dom.noise)
    rgb = jnp.clip(rgb * gain + noise, 0, 1)
    t = poses.shape[0]
    images = rgb.reshape(t, 3, size, size).transpose(0, 2, 3, 1)
    kp_crop = to_crop(kp, box, size)
    inside = jnp.all((kp_crop >= 0) & (kp_crop < size), -1)
    visible = inside & (poses[..., 2] > 1.0)
    if not aux:
        return Render(images, kp_crop, visible, box)
    return Render(images, kp_crop, visible, box, part.reshape(t, size, size),
                  depth.reshape(t, size, size))  # fmt: skip


@functools.partial(jax.jit, static_argnames=("size", "domain", "return_aux"))
def _render(poses, intrinsics, body, keys, up, box, *, size, domain, return_aux):
    dom = DOMAINS[domain]

    def one(p, k, u, b, key, bx):
        return _clip_one(p, k, u, b, key, bx, size, dom, return_aux)

    return jax.vmap(one)(poses, intrinsics, up, body, keys, box)


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check(poses, intrinsics, body, key, up, box, size, domain, clip: bool):
    """Validates shapes (and, outside jit, values); returns per-example keys and ``up``."""
    get_domain(domain)
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an int >= 8 px, found {size!r}")
    want = "[B, T, 17, 3]" if clip else "[B, 17, 3]"
    if poses.ndim != (4 if clip else 3) or poses.shape[-2:] != (skel.NUM_JOINTS, 3):
        raise ValueError(f"expected pose3d_cam {want} mm, found shape {poses.shape}")
    n = poses.shape[0]
    if intrinsics.shape not in ((n, 4), (n, 9)):
        raise ValueError(f"expected intrinsics [{n}, 9] or [{n}, 4], found {intrinsics.shape}")
    want_body = {"radii": (n, NUM_CAPSULES), "bone_scale": (n, len(skel.H36M17_BONES)),
                 "materials": (n, NUM_CAPSULES), "colours": (n, len(MATERIALS), 2, 3),
                 "pattern": (n, len(MATERIALS)), "period": (n, len(MATERIALS))}  # fmt: skip
    for name, shape in want_body.items():
        if getattr(body, name).shape != shape:
            raise ValueError(
                f"expected body.{name} {list(shape)}, found {getattr(body, name).shape}"
            )
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    key = jax.random.split(key, n) if key.shape == () else key
    if key.shape != (n,):
        raise ValueError(f"expected one key or [{n}] keys (one per example), found {key.shape}")
    up = jnp.broadcast_to(jnp.array([0.0, -1.0, 0.0]), (n, 3)) if up is None else up
    if up.shape != (n, 3):
        raise ValueError(f"expected up [{n}, 3] (world up in the camera frame), found {up.shape}")
    if box is not None and (box.centre.shape != (n, 2) or box.scale.shape != (n,)):
        raise ValueError(
            f"expected box centre [{n}, 2] and scale [{n}], found {box.centre.shape} "
            f"and {box.scale.shape}"
        )
    for name, x in (("pose3d_cam", poses), ("intrinsics", intrinsics), ("up", up)):
        if _concrete(x) and not np.all(np.isfinite(np.asarray(x))):
            bad = int(np.sum(~np.isfinite(np.asarray(x))))
            raise ValueError(f"{name} contains {bad} NaN/inf values; expected finite mm / px")
    return key, up


def render(pose3d_cam, intrinsics, body: Body, key, *, size: int, domain: str = "studio",
           up=None, box: Box | None = None, return_aux: bool = False) -> Render:  # fmt: skip
    """Renders one crop per pose.

    Args:
      pose3d_cam: ``[B, 17, 3]`` mm, camera frame. intrinsics: ``[B, 9]`` or ``[B, 4]``.
      body: ``Body`` of B examples (``appearance``). key: ``[B]`` keys, or one key that is
        split. size: crop side, px (static, >= 8). domain: a ``DOMAINS`` name (static).
      up: ``[B, 3]`` world up in the camera frame (default ``(0, -1, 0)``; Human3.6M
        cameras: ``rotation[:, 2, :]``), for the floor and the wild re-viewing.
      box: crops ``Box`` in original-image px (default: the domain's ``person_box`` of the
        projected joints, jittered; with ``wild`` a box chosen for the given pose usually
        misses the re-viewed person). return_aux: also return ``part`` and ``depth``.

    Returns:
      ``Render`` with ``[B]`` leading axes (images ``[B, size, size, 3]``).
    """
    keys, up = _check(pose3d_cam, intrinsics, body, key, up, box, size, domain, clip=False)
    out = _render(pose3d_cam[:, None], intrinsics, body, keys, up, box, size=int(size),
                  domain=domain, return_aux=return_aux)  # fmt: skip
    squeeze = lambda x: None if x is None else x[:, 0]  # noqa: E731
    return Render(*(squeeze(x) for x in out[:3]), out.box, squeeze(out.part), squeeze(out.depth))


def render_clip(pose3d_cam, intrinsics, body: Body, key, *, size: int, domain: str = "studio",
                up=None, box: Box | None = None, return_aux: bool = False) -> Render:  # fmt: skip
    """Renders B clips ``pose3d_cam [B, T, 17, 3]`` mm as ``[B, T, size, size, 3]``.

    One camera (``intrinsics [B, 9]``), body, view, light, background, sensor noise and
    crop per clip (the key is per clip): the default crop is the domain's ``person_box``
    around the joints of all T frames, so a static background is identical in every frame.
    Arguments as ``render``; ``Render.box`` has one box per clip.
    """
    keys, up = _check(pose3d_cam, intrinsics, body, key, up, box, size, domain, clip=True)
    return _render(pose3d_cam, intrinsics, body, keys, up, box, size=int(size), domain=domain,
                   return_aux=return_aux)  # fmt: skip


RENDER_STREAM = 0x5E4D  # fold_in tag of render_batch's purpose keys


def render_batch(data, idx, key, *, size: int, domain: str, seed: int = 0,
                 return_aux: bool = False) -> Render:  # fmt: skip
    """Renders rows ``idx`` of a device-resident split inside a jitted step.

    Args:
      data: ``PoseData`` (or anything with ``pose3d_cam``, ``intrinsics``, ``subject``,
        ``rotation``). idx: ``[B]`` int rows (frames) or ``[B, T]`` (clips, e.g. windows of
        consecutive frames of one sequence; camera and subject of the first frame).
      key: one key for this call. size, domain: as ``render`` (static).
      seed: appearance seed: a studio subject keeps its clothes for a given seed; wild
        bodies are fresh random people every call.

    Returns:
      ``Render`` (``[B]`` or ``[B, T]`` leading axes). For ``wild`` only the images and 2D
      labels are meant for a method: ``data.pose3d_cam[idx]`` is not their 3D.
    """
    idx = jnp.asarray(idx)
    if idx.ndim not in (1, 2) or not jnp.issubdtype(idx.dtype, jnp.integer):
        raise ValueError(f"expected idx [B] or [B, T] int rows, found {idx.shape} {idx.dtype}")
    first = idx if idx.ndim == 1 else idx[:, 0]
    key = jax.random.fold_in(key, RENDER_STREAM)
    k_ids, k_render = jax.random.split(key)
    ids = data.subject[first]
    if get_domain(domain).clutter:
        ids = jax.random.randint(k_ids, first.shape, 0, np.iinfo(np.int32).max)
    body = appearance(ids, jax.random.key(seed), domain)
    up = data.rotation[first][:, 2, :]  # world z in the camera frame: R^T e_z
    fn = render if idx.ndim == 1 else render_clip
    return fn(data.pose3d_cam[idx], data.intrinsics[first], body, k_render, size=size,
              domain=domain, up=up, return_aux=return_aux)  # fmt: skip
