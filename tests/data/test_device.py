"""Device-resident datasets: batching inside jit, padding, augmentation, normalisation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posejax.core import camera, geometry
from posejax.core import skeleton as skel
from posejax.data import augment, device, normalize
from posejax.data.records import SequenceRecord

BASE = np.array(
    [
        [0, 0, 900],
        [-130, 0, 900],
        [-130, 20, 480],
        [-130, 0, 60],
        [130, 0, 900],
        [130, 20, 480],
        [130, 0, 60],
        [0, 0, 1130],
        [0, 0, 1380],
        [0, -50, 1480],
        [0, 0, 1600],
        [150, 0, 1350],
        [150, 0, 1070],
        [150, -30, 820],
        [-150, 0, 1350],
        [-150, 0, 1070],
        [-150, -30, 820],
    ],
    np.float32,
)


def make_records(n_frames=10, subjects=("S1", "S5"), actions=("Walking", "Eating"), noise=2.0):
    rng = np.random.default_rng(0)
    out = []
    for subj in subjects:
        for act in actions:
            ang = rng.uniform(-3, 3, n_frames).astype(np.float32)
            w = np.asarray(
                geometry.rotate(np.repeat(BASE[None], n_frames, 0), geometry.rotation_z(ang))
            )
            w = w + rng.normal(0, 20, w.shape).astype(np.float32)
            for ci in range(4):
                cam = camera.h36m_camera(subj, ci)
                pc = camera.world_to_camera(w, cam.rotation, cam.position).astype(np.float32)
                kp = camera.project(pc, cam.intrinsics).astype(np.float32)
                det = kp + rng.normal(0, noise, kp.shape).astype(np.float32)
                out.append(
                    SequenceRecord(
                        subj,
                        act,
                        f"{act} 1",
                        cam.id,
                        w,
                        pc,
                        kp,
                        det,
                        cam.intrinsics,
                        cam.rotation,
                        cam.position,
                        1000,
                        1000,
                    )
                )
    return out


def test_from_records_concatenates_and_pads():
    recs = make_records()
    ds = device.DeviceDataset.from_records(recs, input_2d="det", stride=2, pad_to=32)
    n = 2 * 2 * 4 * 5
    assert int(ds.host.valid.sum()) == n and ds.size == 96
    assert ds.actions == ("Eating", "Walking")  # H36M table order
    assert ds.subjects == ("S1", "S5")
    np.testing.assert_array_equal(ds.host.kp2d[0], recs[0].kp2d_det[0])
    np.testing.assert_array_equal(ds.host.pose3d_cam[1], recs[0].pose3d_cam[2])
    assert not ds.host.valid[-1]


def test_errors_are_clear():
    recs = make_records()
    with pytest.raises(ValueError, match="input_2d"):
        device.DeviceDataset.from_records(recs, input_2d="sh")
    with pytest.raises(ValueError, match="empty"):
        device.DeviceDataset.from_records([])
    no_det = [dataclasses.replace(r, kp2d_det=None) for r in recs]
    with pytest.raises(ValueError, match="has no detections: set data.input_2d='gt'"):
        device.DeviceDataset.from_records(no_det, input_2d="det")
    r = recs[0]
    bad = r.pose3d_world.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="pose3d_world contains 1 NaN"):
        SequenceRecord(
            r.subject,
            r.action,
            r.sequence,
            r.camera,
            bad,
            r.pose3d_cam,
            r.kp2d_gt,
            None,
            r.intrinsics,
            r.rotation,
            r.position,
            1000,
            1000,
        )
    with pytest.raises(
        ValueError, match=r"kp2d_gt expected shape \(10, 17, 2\), found \(10, 16, 2\)"
    ):
        SequenceRecord(
            r.subject,
            r.action,
            r.sequence,
            r.camera,
            r.pose3d_world,
            r.pose3d_cam,
            r.kp2d_gt[:, :16],
            None,
            r.intrinsics,
            r.rotation,
            r.position,
            1000,
            1000,
        )


def test_sample_batch_in_jit_draws_valid_rows_only():
    ds = device.DeviceDataset.from_records(make_records(), pad_to=64)
    f = jax.jit(lambda d, k: device.sample_batch(d, k, 256))
    b = f(ds.data, jax.random.key(0))
    assert b.kp2d.shape == (256, 17, 2)
    assert bool(jnp.all(b.valid))
    b2 = f(ds.data, jax.random.key(1))
    assert not np.allclose(b.kp2d, b2.kp2d)


def test_rotation_augmentation_keeps_geometry():
    ds = device.DeviceDataset.from_records(make_records())
    batch = jax.tree.map(lambda x: x[:32], ds.data)
    out = augment.rotate_about_vertical(batch, jax.random.key(0))
    # Bone lengths, root position and height unchanged; 2D re-projected from the new 3D.
    np.testing.assert_allclose(
        geometry.bone_lengths(out.pose3d_cam), geometry.bone_lengths(batch.pose3d_cam), rtol=1e-4
    )
    np.testing.assert_allclose(out.pose3d_world[:, 0], batch.pose3d_world[:, 0], atol=1e-3)
    np.testing.assert_allclose(out.pose3d_world[..., 2], batch.pose3d_world[..., 2], atol=1e-2)
    np.testing.assert_allclose(
        out.kp2d_gt, camera.project(out.pose3d_cam, batch.intrinsics), atol=1e-2
    )
    assert np.abs(np.asarray(out.kp2d_gt - batch.kp2d_gt)).max() > 10.0
    # Detector residual survives.
    np.testing.assert_allclose(out.kp2d - out.kp2d_gt, batch.kp2d - batch.kp2d_gt, atol=1e-3)


def test_flip_swaps_left_right_and_mirrors():
    ds = device.DeviceDataset.from_records(make_records())
    batch = jax.tree.map(lambda x: x[:16], ds.data)
    out = augment.flip_left_right(batch, jax.random.key(0), prob=1.0)
    expect = np.asarray(batch.pose3d_cam)[:, skel.H36M17_FLIP] * np.array([-1, 1, 1])
    np.testing.assert_allclose(out.pose3d_cam, expect, atol=1e-3)
    np.testing.assert_allclose(
        out.kp2d_gt, camera.project(out.pose3d_cam, batch.intrinsics), atol=1e-2
    )
    same = augment.flip_left_right(batch, jax.random.key(0), prob=0.0)
    np.testing.assert_allclose(same.pose3d_cam, batch.pose3d_cam, atol=1e-3)


def test_zscore_stats():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 4, 2))
    x[:, 0] = 5.0  # constant dims normalise to 0, not NaN
    s = normalize.zscore_stats(x)
    y = normalize.normalize(x, s)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y[:, 1:].std(0), 1, atol=1e-4)
    np.testing.assert_allclose(normalize.denormalize(y, s), x, rtol=1e-5)
    with pytest.raises(ValueError, match="NaN"):
        normalize.zscore_stats(np.full((3, 2), np.nan))


# -- sequences and windows ------------------------------------------------------------------
LENGTHS = (9, 4, 7, 12, 5, 8, 3, 6)  # frames per record after the stride; some shorter than T


def sequence_dataset(pad_to=32, mesh=None):
    """Records of distinct lengths (one per subject/action/camera), stride 2, padded."""
    recs = make_records(n_frames=24)[: len(LENGTHS)]
    recs = [
        dataclasses.replace(
            r,
            pose3d_world=r.pose3d_world[: 2 * n],
            pose3d_cam=r.pose3d_cam[: 2 * n],
            kp2d_gt=r.kp2d_gt[: 2 * n],
            kp2d_det=r.kp2d_det[: 2 * n],
        )
        for r, n in zip(recs, LENGTHS, strict=True)
    ]
    return recs, device.DeviceDataset.from_records(recs, stride=2, pad_to=pad_to, mesh=mesh)


def test_sequence_and_frame_fields():
    recs, ds = sequence_dataset()
    n = sum(LENGTHS)
    assert ds.size == 64 and int(ds.host.valid.sum()) == n
    expect_seq = np.repeat(np.arange(len(LENGTHS)), LENGTHS)
    expect_frame = np.concatenate([np.arange(k) for k in LENGTHS])
    np.testing.assert_array_equal(ds.host.sequence[:n], expect_seq)
    np.testing.assert_array_equal(ds.host.frame[:n], expect_frame)
    assert ds.host.sequence.dtype == np.int32 and ds.host.frame.dtype == np.int32
    assert np.all(ds.host.sequence[n:] == -1)  # padding belongs to no sequence
    assert ds.sequences[3] == (recs[3].subject, recs[3].action, recs[3].sequence, recs[3].camera)
    # Row (sequence s, frame f) holds source frame 2 f of record s.
    np.testing.assert_array_equal(ds.host.pose3d_cam[n - 1], recs[-1].pose3d_cam[2 * 5])


def test_sequence_rows_cover_valid_rows_in_order():
    recs, ds = sequence_dataset()
    rows = device.sequence_rows(ds.host)
    assert [len(r) for r in rows] == list(LENGTHS)
    np.testing.assert_array_equal(np.sort(np.concatenate(rows)), np.arange(sum(LENGTHS)))
    for s, r in enumerate(rows):
        np.testing.assert_array_equal(ds.host.frame[r], np.arange(LENGTHS[s]))
        np.testing.assert_array_equal(ds.host.pose3d_cam[r], recs[s].pose3d_cam[::2])


def test_window_starts_never_cross_boundaries_or_padding():
    _, ds = sequence_dataset()
    t = 5
    starts = device.window_starts(ds.host, t)
    offsets = np.cumsum((0,) + LENGTHS)
    expect = np.concatenate(
        [np.arange(o, o + k - t + 1) for o, k in zip(offsets[:-1], LENGTHS, strict=True)]
    )
    np.testing.assert_array_equal(starts, expect)  # records of 3 and 4 frames give none
    assert device.window_starts(ds.host, 12).tolist() == [offsets[3]]
    assert device.window_starts(ds.host, 13).size == 0
    with pytest.raises(ValueError, match="does not fit"):
        device.window_starts(ds.host, 65)


def test_sample_windows_are_consecutive_frames_of_one_sequence():
    _, ds = sequence_dataset()
    t, b = 5, 4096
    traces = []

    def draw(d, k):
        traces.append(1)
        return device.sample_windows(d, k, b, t)

    f = jax.jit(draw)
    w = jax.device_get(f(ds.data, jax.random.key(0)))
    f(ds.data, jax.random.key(1))
    assert len(traces) == 1  # one compilation for two keys
    assert w.pose3d_cam.shape == (b, t, 17, 3) and w.valid.shape == (b, t)
    assert w.valid.all()
    np.testing.assert_array_equal(w.sequence, w.sequence[:, :1].repeat(t, 1))
    np.testing.assert_array_equal(w.frame - w.frame[:, :1], np.arange(t)[None].repeat(b, 0))
    # The window's rows, looked up on the host from (sequence, frame), hold the same poses.
    rows = device.sequence_rows(ds.host)
    host_rows = np.stack(
        [rows[s][f] for s, f in zip(w.sequence.ravel(), w.frame.ravel(), strict=True)]
    )
    np.testing.assert_array_equal(w.pose3d_cam.reshape(-1, 17, 3), ds.host.pose3d_cam[host_rows])
    np.testing.assert_array_equal(w.kp2d.reshape(-1, 17, 2), ds.host.kp2d[host_rows])
    # Every valid start is drawn, and only those, roughly uniformly.
    starts = host_rows.reshape(b, t)[:, 0]
    valid_starts = device.window_starts(ds.host, t)
    drawn, counts = np.unique(starts, return_counts=True)
    np.testing.assert_array_equal(drawn, valid_starts)
    expected = b / len(valid_starts)
    assert counts.min() > 0.6 * expected and counts.max() < 1.4 * expected


def test_sample_windows_sharded_over_four_devices():
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[:4]), ("data",))
    _, ds = sequence_dataset(mesh=mesh)
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    f = jax.jit(lambda d, k: device.sample_windows(d, k, 8, 3, sharding))
    w = f(ds.data, jax.random.key(2))
    assert w.pose3d_cam.sharding.is_equivalent_to(sharding, 4)
    assert len(w.pose3d_cam.sharding.device_set) == 4
    assert w.pose3d_cam.addressable_shards[0].data.shape == (2, 3, 17, 3)
    unsharded = jax.jit(lambda d, k: device.sample_windows(d, k, 8, 3))(ds.data, jax.random.key(2))
    np.testing.assert_array_equal(w.pose3d_cam, unsharded.pose3d_cam)


def test_posedata_without_sequence_fields_still_works():
    _, ds = sequence_dataset()
    h = ds.host
    fields = {k: getattr(h, k) for k in h.__dataclass_fields__ if k not in ("sequence", "frame")}
    bare = device.PoseData(**fields)
    assert bare.sequence is None
    padded = device.pad(jax.tree.map(lambda x: x[:50], bare), 16)
    assert padded.size == 64 and padded.sequence is None
    b = jax.jit(lambda d, k: device.sample_batch(d, k, 8))(padded, jax.random.key(0))
    assert b.kp2d.shape == (8, 17, 2) and b.frame is None
    with pytest.raises(ValueError, match="sequence and .frame"):
        device.window_starts(bare, 3)
