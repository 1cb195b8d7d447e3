"""Cameras: vendored parameters, world <-> camera, projection with distortion."""

import json

import numpy as np
import pytest

from posejax.core import camera


def test_vendored_parameters_match_shared_json(cameras_json):
    ref = json.loads(cameras_json.read_text())
    for i, intr in enumerate(ref["intrinsics"]):
        cam = camera.h36m_camera("S1", i)
        assert cam.id == intr["id"]
        np.testing.assert_allclose(cam.focal_length, intr["focal_length"], rtol=1e-7)
        np.testing.assert_allclose(cam.radial, intr["radial_distortion"], rtol=1e-7)
    for subject, exts in ref["extrinsics"].items():
        if not exts[0]:
            continue
        for i, e in enumerate(exts):
            cam = camera.h36m_camera(subject, i)
            np.testing.assert_allclose(cam.orientation, e["orientation"], rtol=1e-6)
            np.testing.assert_allclose(cam.position, e["translation"], rtol=1e-6)


def test_world_camera_round_trip_and_depth():
    cam = camera.h36m_camera("S9", 1)
    rng = np.random.default_rng(0)
    world = rng.normal(scale=500, size=(10, 17, 3)).astype(np.float32) + [0, 0, 900]
    c = camera.world_to_camera(world, cam.rotation, cam.position)
    back = camera.camera_to_world(c, cam.rotation, cam.position)
    np.testing.assert_allclose(back, world, atol=1e-2)
    # Cameras look at the capture volume: depth of points near the origin is positive, 3-7 m.
    assert np.all(c[..., 2] > 2000) and np.all(c[..., 2] < 8000)
    np.testing.assert_allclose(np.linalg.det(cam.rotation), 1.0, atol=1e-5)


def test_projection_closed_form_and_distortion():
    k = np.array([1000, 1000, 500, 500, 0, 0, 0, 0, 0], np.float32)
    pts = np.array([[[100.0, -200.0, 2000.0]]], np.float32)
    np.testing.assert_allclose(camera.project(pts, k), [[[550.0, 400.0]]], rtol=1e-6)
    cam = camera.h36m_camera("S1", 0)
    # Distortion: numpy reference of the documented formula.
    p = np.array([[300.0, 200.0, 3000.0]], np.float32)
    u = p[:, :2] / p[:, 2:]
    r2 = (u**2).sum(-1, keepdims=True)
    k1, k2, k3 = cam.radial
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tan = (cam.tangential * u).sum(-1, keepdims=True)
    ref = cam.focal_length * (u * (radial + tan) + cam.tangential * r2) + cam.center
    np.testing.assert_allclose(camera.project(p, cam.intrinsics), ref, rtol=1e-5)
    assert not np.allclose(camera.project(p, cam.intrinsics, distort=False), ref)


def test_screen_round_trip():
    kp = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]], np.float32)
    s = camera.pixels_to_screen(kp, 1000, 1002)
    np.testing.assert_allclose(s[0], [-1.0, -1.002], atol=1e-6)
    np.testing.assert_allclose(s[2], [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(camera.screen_to_pixels(s, 1000, 1002), kp, atol=1e-3)


def test_errors():
    with pytest.raises(KeyError, match="S9"):
        camera.h36m_camera("S2", 0)
    with pytest.raises(ValueError, match="intrinsics"):
        camera.project(np.zeros((2, 17, 3)), np.zeros(7))
