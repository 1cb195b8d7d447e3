"""The on-device renderer: labels land on the drawn body, depth order, determinism, clips,
one compile per batch shape, and clear errors.

Every render here uses B = 4 (clips B = 2) and ``return_aux=True`` so that the tests share
a handful of compiled programs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posejax.core import camera
from posejax.data import device, render, render_appearance, render_scene, synthpose

B = 4
SIZE = 128


@pytest.fixture(scope="module")
def data():
    config = synthpose.SynthPoseConfig(frames_per_sequence=30, sequences_per_action=1)
    recs = synthpose.generate("test", seed=0, config=config, actions=("Walking", "Waving"))
    return device.DeviceDataset.from_records(recs)


def _inputs(data, rows, domain="studio"):
    host = data.host
    body = render.appearance(jnp.asarray(host.subject[rows]), jax.random.key(0), domain)
    up = host.rotation[rows][:, 2, :]
    return host.pose3d_cam[rows], host.intrinsics[rows], body, up


def _render(data, rows, seed=1, domain="studio", size=SIZE):
    pose, k, body, up = _inputs(data, rows, domain)
    keys = jax.random.split(jax.random.key(seed), len(rows))
    return render.render(pose, k, body, keys, size=size, domain=domain, up=up, return_aux=True)


def _at(image_like, kp, size):
    """Values of ``[B, H, W, ...]`` at the pixels holding ``kp [B, J, 2]`` crop px."""
    ij = np.clip(np.floor(kp).astype(int), 0, size - 1)
    return np.asarray(image_like)[np.arange(len(kp))[:, None], ij[..., 1], ij[..., 0]]


ROWS = np.array([3, 70, 141, 222])


@pytest.mark.parametrize("size", [SIZE, 256])  # 96 px: test_render_batch_in_jit_compiles_once
def test_shapes_and_ranges(data, size):
    out = _render(data, ROWS, size=size)
    assert out.images.shape == (B, size, size, 3) and out.images.dtype == jnp.float32
    assert 0 <= float(out.images.min()) and float(out.images.max()) <= 1
    assert out.kp2d.shape == (B, 17, 2) and out.visible.shape == (B, 17)
    assert out.part.shape == (B, size, size) and out.depth.shape == (B, size, size)
    assert out.box.centre.shape == (B, 2) and out.box.scale.shape == (B,)
    body = np.mean(np.asarray(out.part) >= 0, axis=(1, 2))
    assert np.all((body > 0.05) & (body < 0.6)), body  # a person, not empty, not all body


@pytest.mark.parametrize("domain", ["studio", "wild"])
def test_visible_joints_fall_on_body_pixels(data, domain):
    rows = ROWS + 5
    out = jax.device_get(_render(data, rows, domain=domain))
    part = _at(out.part, out.kp2d, SIZE)
    assert np.all(part[out.visible] >= 0), part
    if domain == "studio":  # the whole body in view; labels are the given camera's 2D
        assert out.visible.all()
        expected = render.to_crop(data.host.kp2d_gt[rows], out.box, SIZE)
        np.testing.assert_allclose(out.kp2d, expected, atol=0.05)
        # Background pixels really are the wall or floor: a joint's pixel is off the wall.
        assert np.all(np.isfinite(_at(out.depth, out.kp2d, SIZE)))


def _facing_pose(arm_z):
    """A person 4 m away facing the camera, the right forearm across the chest at
    ``arm_z`` mm (in front of the torso below 3890 mm, behind it above 4110 mm)."""
    z = 4000.0
    return np.array([
        (0, 0, z), (-130, 0, z), (-130, 450, z), (-130, 890, z),  # pelvis, right leg
        (130, 0, z), (130, 450, z), (130, 890, z),  # left leg
        (0, -230, z), (0, -490, z), (0, -600, z - 60), (0, -710, z),  # spine .. head
        (150, -490, z), (160, -210, z), (160, 40, z),  # left arm, hanging
        (-150, -490, z), (-150, -300, arm_z), (100, -300, arm_z),  # right arm, across
    ], np.float32)  # fmt: skip


def test_nearer_limbs_hide_farther_ones():
    poses = np.stack([_facing_pose(z) for z in (3700.0, 4350.0, 3650.0, 4400.0)])
    k = np.tile(np.array([1150, 1150, 500, 500, 0, 0, 0, 0, 0], np.float32), (B, 1))
    body = render.appearance(jnp.zeros(B, jnp.int32), jax.random.key(0), "studio")
    out = jax.device_get(render.render(poses, k, body, jax.random.key(3), size=SIZE,
                                       return_aux=True))  # fmt: skip
    mid = (poses[:, 15] + poses[:, 16]) / 2  # forearm midpoint, in front of the sternum
    kp = render.to_crop(np.asarray(camera.project_pinhole(mid[:, None], k)), out.box, SIZE)
    part = _at(out.part, kp, SIZE)[:, 0]
    depth = _at(out.depth, kp, SIZE)[:, 0]
    forearm = render.CAPSULES.index("forearm_r")
    torso = [render.CAPSULES.index(n) for n in ("torso", "torso_l", "torso_r")]
    assert part[0] == forearm and part[2] == forearm, part
    assert part[1] in torso and part[3] in torso, part
    # The depth buffer holds the nearest surface: the arm's front, or the torso's front.
    assert depth[0] < 3700 and depth[2] < 3650
    assert 3800 < depth[1] < 4000 and 3800 < depth[3] < 4000, depth


def test_deterministic_per_key_and_different_across_keys(data):
    for domain in ("studio", "wild"):
        a, b = _render(data, ROWS, 7, domain), _render(data, ROWS, 7, domain)
        np.testing.assert_array_equal(a.images, b.images)
        c = _render(data, ROWS, 8, domain)
        diff = np.mean(np.abs(np.asarray(a.images) - np.asarray(c.images)), axis=(1, 2, 3))
        assert np.all(diff > 0.01), (domain, diff)


def test_wild_truncates_some_joints(data):
    visible = np.concatenate(
        [np.asarray(_render(data, ROWS + i, 10 + i, "wild").visible) for i in range(3)]
    )
    assert 0 < np.sum(~visible) < visible.size / 2
    assert np.any(visible.all(axis=1)) and np.any(~visible.all(axis=1))


def test_clips_keep_background_and_body_and_compile_once(data):
    starts = device.window_starts(data.host, 9)[[0, 40]]
    idx = jnp.asarray(starts[:, None] + 2 * np.arange(5))  # [2, 5], frames 40 ms apart
    fn = jax.jit(render.render_batch, static_argnames=("size", "domain", "return_aux"))
    before = fn._cache_size()  # jit wrappers of one function share their cache
    out = fn(data.data, idx, jax.random.key(0), size=64, domain="wild", return_aux=True)
    out = jax.device_get(out)
    assert out.images.shape == (2, 5, 64, 64, 3) and out.kp2d.shape == (2, 5, 17, 2)
    assert out.box.scale.shape == (2,)  # one crop per clip
    wall = np.all(np.isinf(out.depth), axis=1)  # [2, 64, 64]: wall in every frame
    assert wall.sum() > 500
    for c in range(2):
        frames = out.images[c][:, wall[c]]  # [5, n, 3]
        np.testing.assert_array_equal(frames, np.broadcast_to(frames[:1], frames.shape))
        assert np.abs(out.images[c, 0] - out.images[c, -1]).max() > 0.1  # the body moved
    again = fn(data.data, idx[::-1], jax.random.key(1), size=64, domain="wild", return_aux=True)
    jax.block_until_ready(again)
    assert fn._cache_size() == before + 1


def test_render_batch_in_jit_compiles_once(data):
    fn = jax.jit(render.render_batch, static_argnames=("size", "domain"))
    before = fn._cache_size()  # jit wrappers of one function share their cache
    for step in range(2):
        key = jax.random.fold_in(jax.random.key(0), step)
        idx = jax.random.randint(key, (B,), 0, data.size)
        out = fn(data.data, idx, key, size=96, domain="studio")
        assert out.images.shape == (B, 96, 96, 3) and out.part is None
        assert out.kp2d.shape == (B, 17, 2) and bool(out.visible.all())
    assert fn._cache_size() == before + 1


def test_appearance_is_per_subject():
    a = render.appearance(jnp.array([1, 5, 1]), jax.random.key(0), "studio")
    np.testing.assert_array_equal(a.colours[0], a.colours[2])
    assert not np.array_equal(a.colours[0], a.colours[1])
    np.testing.assert_array_equal(a.bone_scale, 1.0)  # studio keeps the pose's bones
    w = render.appearance(jnp.array([1, 5]), jax.random.key(0), "wild")
    assert not np.allclose(w.bone_scale, 1.0)


def test_person_box_conventions():
    kp = jnp.array([[[100.0, 200.0], [300.0, 600.0], [150.0, 300.0]]])
    box = render.person_box(kp, margin=0.2, style="h36m")
    np.testing.assert_allclose(box.centre, [[200.0, 400.0]])
    np.testing.assert_allclose(box.scale, [2.4])  # 1.2 x 400 px / 200
    box = render.person_box(kp, margin=0.0, style="mpii")
    np.testing.assert_allclose(box.centre, [[200.0, 430.0]])  # c_y += 15 s, s = 2
    np.testing.assert_allclose(box.scale, [2.5])  # s *= 1.25
    corners = render.to_crop(jnp.array([[[-50.0, 180.0], [450.0, 680.0]]]), box, 64)
    np.testing.assert_allclose(corners, [[[0.0, 0.0], [64.0, 64.0]]], atol=1e-4)


def test_undistort_inverts_projection():
    # The renderer's pixel rays go through camera.undistort: it must invert camera.project
    # and agree with the fixed-point iteration written on the [..., 2] layout.
    ks = np.stack([camera.h36m_camera("S9", i).intrinsics for i in range(2)])
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(-0.5, 0.5, (2, 50, 2)), np.ones((2, 50, 1))], -1)
    pts = (pts * 4000).astype(np.float32)
    kp = np.asarray(camera.project(pts, ks))
    xy = (kp - ks[:, None, 2:4]) / ks[:, None, 0:2]
    uv = np.asarray(camera.undistort(xy, ks))
    np.testing.assert_allclose(uv, pts[..., :2] / pts[..., 2:], atol=1e-5)
    k, p, ref = ks[:, None], ks[:, None, 7:9], xy
    for _ in range(5):
        r2 = np.sum(ref**2, -1, keepdims=True)
        radial = 1 + k[..., 4:5] * r2 + k[..., 5:6] * r2**2 + k[..., 6:7] * r2**3
        ref = (xy - p * r2) / (radial + np.sum(p * ref, -1, keepdims=True))
    np.testing.assert_allclose(uv, ref, atol=1e-6)


def test_bad_input_is_a_clear_error(data):
    pose, k, body, up = _inputs(data, ROWS)
    key = jax.random.key(0)
    ok = dict(size=32, domain="studio")
    nan = np.where(np.arange(17)[:, None] == 3, np.nan, pose)
    cases = [
        ((pose[:, :16], k, body, key), ok,
         r"expected pose3d_cam \[B, 17, 3\] mm, found shape \(4, 16, 3\)"),
        ((pose, k[:, :5], body, key), ok,
         r"expected intrinsics \[4, 9\] or \[4, 4\], found \(4, 5\)"),
        ((nan, k, body, key), ok, "pose3d_cam contains 12 NaN"),
        ((pose, k, body, key), dict(size=4, domain="studio"),
         "size must be an int >= 8 px, found 4"),
        ((pose, k, body, key), dict(size=32, domain="outdoor"),
         r"unknown render domain 'outdoor'; expected one of \['studio', 'wild'\]"),
        ((pose, k, body._replace(radii=body.radii[:, :5]), key), ok,
         r"expected body.radii \[4, 18\], found \(4, 5\)"),
        ((pose, k, body, jax.random.split(key, 3)), ok, r"expected one key or \[4\] keys"),
    ]  # fmt: skip
    for args, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            render.render(*args, **kwargs)
    with pytest.raises(ValueError, match=r"expected pose3d_cam \[B, T, 17, 3\]"):
        render.render_clip(pose, k, body, key, size=32)
    with pytest.raises(ValueError, match="unknown render domain"):
        render.appearance(jnp.arange(2), key, "outdoor")
    with pytest.raises(ValueError, match="unknown box style 'coco'"):
        render.person_box(jnp.zeros((1, 17, 2)), style="coco")
    with pytest.raises(ValueError, match=r"expected idx \[B\] or \[B, T\] int rows"):
        render.render_batch(data.data, jnp.zeros((2, 2, 2), jnp.int32), key, size=32, domain="wild")


def test_depth_gradients_are_finite(data):
    # The full image's gradient (checked by hand, finite) costs a 15 s compile; the NaN
    # risks live in the capsule placement and the ray-capsule roots, checked here.
    pose = jnp.asarray(data.host.pose3d_cam[5])
    radii = jnp.asarray(render_appearance.BASE_RADII)
    rays = camera.normalized_coordinates(data.host.kp2d_gt[5], data.host.intrinsics[5])
    jitter = jax.random.normal(jax.random.key(0), (4, 17, 2)) * 0.03  # hits and misses
    d = (rays + jitter).reshape(-1, 2)
    d = render_scene.unit(jnp.concatenate([d, jnp.ones((len(d), 1))], 1)).T

    def depth(pose):
        a, b, _, _ = render._capsules(pose, radii)
        t, _ = render._nearest(a, b, radii, d)
        return jnp.sum(jnp.where(jnp.isfinite(t), t, 0.0))

    grad = jax.jit(jax.grad(depth))(pose)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_gallery_images_writes_small_pngs(tmp_path):
    from PIL import Image

    from posejax.data import gallery

    paths = gallery.rendered_images(tmp_path, seed=0)
    names = sorted(p.name for p in paths)
    assert names == ["render_clip.png", "render_studio.png", "render_wild.png"]
    for p in paths:
        im = Image.open(p)
        assert im.size[0] >= 128 and im.size[1] >= 128
        assert p.stat().st_size < 300_000  # small enough for docs/
