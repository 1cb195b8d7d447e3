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
through its centre, undistorted with the camera's distortion (``camera.undistort``), so
``camera.project`` (what ``PoseData.kp2d_gt`` holds) lands on the drawn body. A crop is a
``Box``: centre ``[B, 2]`` px and scale ``[B]`` in the stacked-hourglass "MPII scale" unit
of 200 px (side ``200 * scale`` px, shared/spec/hourglass.md section 3.2); an
original-image point ``x`` is at ``(x - centre + 100 scale) * size / (200 scale)`` crop
px. The crop is ray-cast directly (rays through the crop window), never rendered
full-frame and resampled.

Scene. The body is ``len(CAPSULES)`` capsules (a segment and a radius) placed on the joints;
each pixel ray meets each capsule analytically (quadratic on the infinite cylinder, then the
end spheres) and the nearest hit wins, so near limbs hide far ones. Shading is Lambert from
the capsule normal and a light direction plus ambient, in each capsule's material colours
and pattern. Behind the body: a floor ray-cast in 3D (a blob shadow under the pelvis) and a
wall in crop coordinates. This module holds the API, crops, re-viewing, ray casting and
shading; ``render_appearance`` the capsule table, materials, palettes and ``appearance``
(``Body`` and ``appearance`` are re-exported here); ``render_scene`` the domains, light,
wall, floor, shadow and sensor noise.

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

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from posejax.core import camera, geometry
from posejax.core import skeleton as skel
from posejax.data import render_appearance, render_scene
from posejax.data.render_appearance import CAPSULES, HAIR, MATERIALS, SKIN, Body, appearance
from posejax.data.render_scene import DOMAINS, Domain, Draws, get_domain, unit

_W_A, _W_B = render_appearance.ENDS
_HEAD = CAPSULES.index("head")
_FOREARMS = np.array([CAPSULES.index("forearm_l"), CAPSULES.index("forearm_r")])
_FOREARM = np.isin(np.arange(len(CAPSULES)), _FOREARMS)
assert CAPSULES[-2:] == ("foot_l", "foot_r")
_KNEES = np.array([5, 2])  # of the feet
HAND_MM, FOOT_MM = 75.0, 140.0  # hand past the wrist; toe ahead of the ankle
# Bone b (H36M17_BONES order) lies on the chain from the root to joint k: _CHAIN[k, b] = 1.
_CHAIN = np.zeros((skel.NUM_JOINTS, len(skel.H36M17_BONES)), np.float32)
for _k in range(skel.NUM_JOINTS):
    _j = _k
    while skel.H36M17_PARENTS[_j] >= 0:
        _CHAIN[_k, int(np.flatnonzero(skel.H36M17_BONES[:, 0] == _j)[0])] = 1.0
        _j = skel.H36M17_PARENTS[_j]


class Box(NamedTuple):
    """Square crop: ``centre [..., 2]`` px and ``scale [...]`` (side ``200 * scale`` px)."""

    centre: jax.Array
    scale: jax.Array


class Render(NamedTuple):
    """Rendered crops; leading axes ``[B]`` (``render``) or ``[B, T]`` (``render_clip``).

    Attributes:
      images: ``[..., H, W, 3]`` float32 RGB in [0, 1]. kp2d: ``[..., 17, 2]`` crop px.
      visible: ``[..., 17]`` bool: inside the crop and in front of the camera.
      box: the crop in original-image px (``[B]``: one per clip).
      part: ``[..., H, W]`` int32 capsule index (``CAPSULES``), -1 off the body (aux only).
      depth: ``[..., H, W]`` float32 z of the nearest surface (body or floor), mm; inf on
        the wall (aux only).
      pose3d: ``[..., 17, 3]`` mm, camera frame: the pose as drawn (re-viewed and with the
        body's bone lengths in ``wild``); aux only, for evaluation: a method never trains on
        it for ``wild`` images.
    """

    images: jax.Array
    kp2d: jax.Array
    visible: jax.Array
    box: Box
    part: jax.Array | None = None
    depth: jax.Array | None = None
    pose3d: jax.Array | None = None


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


def _proportions(pose, bone_scale):
    """``pose [..., 17, 3]`` with every bone scaled by ``bone_scale [16]``, root fixed."""
    bones = pose[..., skel.H36M17_BONES[:, 0], :] - pose[..., skel.H36M17_BONES[:, 1], :]
    return pose[..., :1, :] + jnp.einsum("kb,...bi->...ki", _CHAIN, bones * bone_scale[:, None])


def _view(poses, up, u: Draws, dom: Domain):
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
    fwd = unit(jnp.cross(pose[4] - pose[1], pose[8] - pose[0]))  # left x up = forward
    # Forearms: extended past the wrist by the hand (only there: a foot has a == b here,
    # and a norm at zero has a NaN gradient even where it is masked out).
    elbow, wrist = a[_FOREARMS], b[_FOREARMS]
    arm = jnp.zeros(len(CAPSULES)).at[_FOREARMS].set(jnp.linalg.norm(wrist - elbow, axis=-1))
    b = b.at[_FOREARMS].set(wrist + HAND_MM * unit(wrist - elbow))
    # Feet (the last two capsules): heel and toe from the ankle, the shank and forward.
    ankle, down = a[-2:], unit(a[-2:] - pose[_KNEES])
    toe_dir = unit(fwd - (down @ fwd)[:, None] * down)
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


def _rays(box: Box, k, size: int):
    """Unit rays ``[3, P]`` (P = size^2, row-major) through the crop's pixel centres."""
    side = 200 * box.scale
    g = (jnp.arange(size, dtype=jnp.float32) + 0.5) * side / size - side / 2
    x = jnp.broadcast_to((box.centre[0] + g[None, :] - k[2]) / k[0], (size, size)).reshape(-1)
    y = jnp.broadcast_to((box.centre[1] + g[:, None] - k[3]) / k[1], (size, size)).reshape(-1)
    if k.shape[-1] == 9:
        xy = camera.undistort(jnp.stack([x, y], -1), k)
        x, y = xy[:, 0], xy[:, 1]
    return unit(jnp.stack([x, y, jnp.ones_like(x)]), axis=0)


def _triangle(x):
    """Triangle wave of period 1 in [-1, 1] (a cheap sine)."""
    return 1 - 4 * jnp.abs(x - jnp.floor(x) - 0.5)


def _shade(pose, d, body: Body, scene: render_scene.Scene):
    """One frame: ``(rgb [3, P], part [P], z [P])`` with the floor and wall behind."""
    a, b, split, fwd = _capsules(pose, body.radii)
    t_hit, idx = _nearest(a, b, body.radii, d)
    hit = jnp.isfinite(t_hit)
    p = jnp.where(hit, t_hit, 1.0) * d  # [3, P]
    # Gathers along the long minor axis: one [K, C] table of the capsules, one [K, M] of the
    # materials (a [P, 3] layout ran 2x slower on a CPU).
    axis = unit(b - a)
    length = jnp.linalg.norm(b - a, axis=-1)
    caps = jnp.concatenate([a.T, axis.T, length[None], split[None]])[:, idx]  # [8, P]
    ai, ui = caps[0:3], caps[3:6]
    s = jnp.clip(jnp.sum((p - ai) * ui, 0), 0, caps[6])
    n = unit(p - ai - s * ui, axis=0)
    mat = body.materials[idx]
    mat = jnp.where(s > caps[7], SKIN, mat)  # the hand beyond the wrist
    head_up = unit(pose[10] - pose[9])
    hair = (head_up @ n > 0.35) | (fwd @ n < -0.4)
    mat = jnp.where((idx == _HEAD) & hair, HAIR, mat)
    looks = jnp.concatenate(
        [body.colours.reshape(-1, 6).T, body.period[None], body.pattern[None].astype(jnp.float32)]
    )[:, mat]  # [8, P]: base rgb, pattern rgb, period, pattern kind
    # Solid pattern coordinates: along the capsule, and across the body (left + forward).
    across = (unit(pose[4] - pose[1]) + 0.5 * fwd) @ (p - pose[0][:, None])
    wu, wv = _triangle((s + 37.0 * idx) / looks[6]), _triangle(across / looks[6])
    pat = looks[7]
    w = jnp.where(pat == 1, wu, jnp.where(pat == 2, wv, wu * wv))
    m = jnp.where(pat == 0, 0.0, jnp.clip(0.5 + 2 * w, 0, 1))
    albedo = looks[0:3] + m * (looks[3:6] - looks[0:3])
    lit = scene.ambient + (1 - scene.ambient) * jnp.maximum(scene.light @ n, 0)
    rgb = albedo * lit * scene.tint[:, None]
    bg, z_floor = render_scene.background(scene, pose[0])
    return jnp.where(hit, rgb, bg), jnp.where(hit, idx, -1), jnp.where(hit, p[2], z_floor)


def _clip_one(poses, k, up, body: Body, key, box, size: int, dom: Domain, aux: bool):
    """One clip ``poses [T, 17, 3]`` (one camera ``k``, world ``up [3]``) -> ``Render``."""
    k_draws, k_noise = jax.random.split(key)
    u = Draws(k_draws, 256)
    poses, up = _view(poses, up, u, dom)
    poses = _proportions(poses, body.bone_scale)
    kp = camera.project_pinhole(poses, k)
    if box is None:
        box = person_box(kp.reshape(-1, 2), dom.margin, dom.box_style)
        shift = u((2,), -dom.shift, dom.shift) * 200 * box.scale
        box = Box(box.centre + shift, box.scale * 2 ** u((), *dom.log2_scale))
    d = _rays(box, k, size)
    scene = render_scene.draw_scene(poses, up, d, u, size, dom)
    rgb, part, depth = jax.vmap(lambda p: _shade(p, d, body, scene))(poses)
    rgb = render_scene.sensor(rgb, u, k_noise, dom)
    t = poses.shape[0]
    images = rgb.reshape(t, 3, size, size).transpose(0, 2, 3, 1)
    kp_crop = to_crop(kp, box, size)
    inside = jnp.all((kp_crop >= 0) & (kp_crop < size), -1)
    visible = inside & (poses[..., 2] > 1.0)
    if not aux:
        return Render(images, kp_crop, visible, box)
    return Render(images, kp_crop, visible, box, part.reshape(t, size, size),
                  depth.reshape(t, size, size), poses)  # fmt: skip


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
    want_body = {"radii": (n, len(CAPSULES)), "bone_scale": (n, len(skel.H36M17_BONES)),
                 "materials": (n, len(CAPSULES)), "colours": (n, len(MATERIALS), 2, 3),
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
        misses the re-viewed person). return_aux: also return ``part``, ``depth`` and ``pose3d``.

    Returns:
      ``Render`` with ``[B]`` leading axes (images ``[B, size, size, 3]``).
    """
    keys, up = _check(pose3d_cam, intrinsics, body, key, up, box, size, domain, clip=False)
    out = _render(pose3d_cam[:, None], intrinsics, body, keys, up, box, size=int(size),
                  domain=domain, return_aux=return_aux)  # fmt: skip
    squeeze = lambda x: None if x is None else x[:, 0]  # noqa: E731
    return Render(*(squeeze(x) for x in out[:3]), out.box, squeeze(out.part),
                  squeeze(out.depth), squeeze(out.pose3d))  # fmt: skip


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
