"""Real image datasets end to end on small files written here (``posejax.data.images``,
``image_pipeline``, ``image_tfds``).

JPEG / PNG images of 64-368 px and annotation h5 files in the spec's layouts
(``spec/hourglass.md`` §9): readers, the crop convention, augmentation bounds, the TFDS
builders read back against the readers, the grain pipeline with 0 and 1 workers, and
every bad-input case of issue 15.
"""

import io
import logging
import pathlib

import h5py
import jax
import numpy as np
import pytest
from PIL import Image, ImageDraw

from posejax.data import image_pipeline, image_tfds, images, tfds_io
from posejax.training import feeds

J = images.NUM_JOINTS


def write_image(path: pathlib.Path, size, points=(), seed=0) -> None:
    """A smooth colour gradient with noise and a dot at each point; JPEG or PNG by suffix."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 200 / w, yy * 200 / h, (xx + yy) * 100 / (w + h)], -1)
    arr = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(arr)
    draw = ImageDraw.Draw(im)
    for x, y in points:
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=90) if path.suffix == ".jpg" else im.save(path)


def _chars(names, width=16) -> np.ndarray:
    out = np.zeros((len(names), width), np.uint8)  # Lua's char-code rows, zero padded
    for i, n in enumerate(names):
        out[i, : len(n)] = np.frombuffer(n.encode(), np.uint8)
    return out


def _joints(rng, n, centre, spread) -> np.ndarray:
    return (np.asarray(centre, float) + rng.uniform(-spread, spread, (n, J, 2))).astype(np.float32)


def write_mpii(d: pathlib.Path) -> dict:
    """4 images, 6 people (image 0 has two), rows 1 and 4 in annot/valid.h5, row 5 a test row."""
    rng = np.random.default_rng(0)
    sizes = [(320, 240), (200, 150), (256, 256), (64, 96)]
    names = [f"{i:09d}.jpg" for i in range(4)]
    img_of = np.array([0, 0, 1, 2, 3, 1])
    center = np.array([[100, 100], [220, 120], [100, 70], [128, 128], [32, 40], [90, 60]], float)
    scale = np.array([0.8, 0.7, 0.5, 1.0, 0.3, 0.4])
    part = _joints(rng, 6, [0, 0], 20) + center[:, None].astype(np.float32)
    part[2, 9] = 0  # an unlabelled joint (x = 0)
    visible = np.ones((6, J))
    visible[3, :4] = 0
    for i, (name, size) in enumerate(zip(names, sizes, strict=True)):
        pts = part[img_of == i].reshape(-1, 2)
        write_image(d / "images" / name, size, pts, seed=i)
    annot = {
        "index": img_of,
        "person": np.array([0, 1, 0, 0, 0, 1]),
        "imgname": _chars([names[i] for i in img_of]),
        "part": part,
        "center": center,
        "scale": scale,
        "normalize": np.full(6, 30.0),
        "torsoangle": np.zeros(6),
        "visible": visible,
        "multi": np.zeros(6),
        "istrain": np.array([1, 1, 1, 1, 1, 0]),
    }
    with h5py.File(d / "annot.h5", "w") as f:
        for k, v in annot.items():
            f[k] = v
    (d / "annot").mkdir(exist_ok=True)
    with h5py.File(d / "annot" / "valid.h5", "w") as f:
        f["index"], f["person"] = np.array([0, 2]), np.array([1, 0])  # rows 1 and 3
    return annot


H36M_ROWS = [  # subject, action, subaction, camera, id, istrain
    (1, 2, 1, 1, 1, 1),
    (1, 2, 1, 1, 6, 1),
    (5, 14, 2, 3, 11, 1),
    (9, 3, 1, 2, 201, 0),
    (11, 2, 2, 1, 1, 0),
    (11, 4, 1, 4, 401, 0),
]


def write_h36m(d: pathlib.Path) -> dict:
    rng = np.random.default_rng(1)
    n = len(H36M_ROWS)
    cols = np.array(H36M_ROWS)
    annot = {
        "id": cols[:, 4],
        "joint_2d": _joints(rng, n, [112, 112], 80),
        "joint_3d_mono": rng.normal(0, 300, (n, J, 3)) + [0, 0, 4000],
        "bbox": np.ones((n, 4)),
        "subject": cols[:, 0],
        "action": cols[:, 1],
        "subaction": cols[:, 2],
        "camera": cols[:, 3],
        "istrain": cols[:, 5],
    }
    for i, row in enumerate(H36M_ROWS):
        name = images.h36m_image_name(*row[:5])
        write_image(d / "images" / name, (224, 224), annot["joint_2d"][i], seed=10 + i)
    with h5py.File(d / "annotSampleTest.h5", "w") as f:
        for k, v in annot.items():
            f[k] = v
    return annot


def write_3dhp(d: pathlib.Path) -> dict:
    rng = np.random.default_rng(2)
    n = 3
    annot = {
        "id": np.arange(1, n + 1),
        "TSId": np.array([1, 5, 6]),
        "data_id": np.array([7, 3, 9]),
        "univ_annot3": rng.normal(0, 300, (n, 17, 3)) + [0, 0, 4000],
        "valid_frame": np.array([1, 1, 0]),
        "activity_annotation": np.array([1, 4, 2]),
        "bbox": np.array([[100, 200, 736, 700], [0, 0, 368, 368], [5, 5, 100, 100]], float),
        "annot_2d": rng.uniform(300, 700, (n, 17, 2)),
    }
    for ts, di in zip(annot["TSId"], annot["data_id"], strict=True):
        write_image(d / "images" / f"{ts}_{di}.png", (368, 368), seed=int(ts))
    with h5py.File(d / "annotTest.h5", "w") as f:
        for k, v in annot.items():
            f[k] = v
    return annot


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    out = {}
    for name, write in (("mpii", write_mpii), ("h36m", write_h36m), ("mpi_inf_3dhp", write_3dhp)):
        out[name] = root / name
        out[name].mkdir()
        out[name + "_annot"] = write(out[name])
    return out


# --- crop convention and augmentation ---------------------------------------------------


def test_crop_affine_known_values_and_box_centre():
    a = image_pipeline.crop_affine((100.0, 50.0), 1.0, 0.0, 200)  # 200 px box -> 200 px: a shift
    np.testing.assert_allclose(a, [[1, 0, 0], [0, 1, 50]])
    c, s, out = np.array([37.5, 81.0]), 0.9, 64
    for rot in (0.0, 33.0, -60.0):
        for flip in (False, True):
            a = image_pipeline.crop_affine(c, s, rot, out, flip=flip)
            np.testing.assert_allclose(image_pipeline.transform_points(c, a), [32, 32], atol=1e-4)
    k = 64 / 180
    a = image_pipeline.crop_affine(c, s, 90.0, out)  # counter-clockwise on screen: right -> up
    np.testing.assert_allclose(
        image_pipeline.transform_points(c + [10, 0], a), [32, 32 - 10 * k], 1e-4
    )
    a = image_pipeline.crop_affine(c, s, 0.0, out, flip=True)
    np.testing.assert_allclose(
        image_pipeline.transform_points(c + [10, 5], a), [32 - 10 * k, 32 + 5 * k], rtol=1e-5
    )
    corners = c + 90 * np.array([[-1, -1], [1, 1]])  # the box corners -> the crop corners
    np.testing.assert_allclose(
        image_pipeline.transform_points(corners, image_pipeline.crop_affine(c, s, 0, out)),
        [[0, 0], [64, 64]],
        atol=1e-4,
    )


@pytest.mark.parametrize("scale,rot", [(0.6, 0.0), (0.6, 40.0), (2.4, -25.0)])
def test_crop_pixels_follow_the_affine(scale, rot):
    """A bright 3x3 spot lands where ``transform_points`` puts its centre (box 2.4: the
    reduce prefilter path)."""
    img = np.zeros((300, 400, 3), np.uint8)
    spot = np.array([230.5, 141.5])  # centre of pixels 229..231 x 140..142
    img[140:143, 229:232] = 255
    c = np.array([210.0, 150.0])
    out, a = image_pipeline.crop(img, c, scale, rot, 96)
    assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    want = image_pipeline.transform_points(spot, a)
    ys, xs = np.nonzero(out[..., 0] > 0.5 * out[..., 0].max())
    w = out[ys, xs, 0].astype(float)
    got = np.array([np.sum((xs + 0.5) * w), np.sum((ys + 0.5) * w)]) / w.sum()
    np.testing.assert_allclose(got, want, atol=0.6)


def test_crop_box_outside_the_image_is_an_error():
    with pytest.raises(ValueError, match="outside the 40x30 image"):
        image_pipeline.crop(np.zeros((30, 40, 3), np.uint8), (500.0, 15.0), 0.5, 0.0, 32)
    with pytest.raises(ValueError, match="scale > 0"):
        image_pipeline.crop(np.zeros((30, 40, 3), np.uint8), (20.0, 15.0), 0.0, 0.0, 32)


def test_augmentation_draws_within_the_spec_bounds():
    aug, rng = image_pipeline.SPEC_AUGMENT, np.random.default_rng(0)
    draws = [aug.draw(rng) for _ in range(4000)]
    f, rot, flip, gain = (np.array([d[i] for d in draws]) for i in range(4))
    r = np.log2(f)
    assert np.abs(r).max() <= 0.5 + 1e-9 and 0.22 < r.std() < 0.25
    assert np.abs(rot).max() <= 60 and 0.37 < np.mean(rot != 0) < 0.43
    assert 0.47 < flip.mean() < 0.53
    assert gain.min() >= 0.6 and gain.max() <= 1.4 and gain.shape == (4000, 3)


def _record(dirs, dataset, split, i=0):
    return images.READERS[dataset](dirs[dataset], split)[i]


def test_flip_swaps_left_and_right_and_mirrors(dirs):
    rec = _record(dirs, "h36m", "train")
    flip_only = image_pipeline.Augment(
        scale_sd=0, rotation_prob=0, flip_prob=1, gain=(1, 1), datasets=images.DATASETS
    )
    rng = np.random.default_rng(0)
    plain = image_pipeline.process(rec, None, out_size=64)
    flipped = image_pipeline.process(rec, rng, out_size=64, augment=flip_only)
    np.testing.assert_allclose(
        flipped["kp2d"][images.FLIP_PERM][:, 0], 64 - plain["kp2d"][:, 0], atol=1e-4
    )
    np.testing.assert_allclose(flipped["pose3d"][images.FLIP_PERM], plain["pose3d"] * [-1, 1, 1])
    diff = np.abs(flipped["image"][:, ::-1].astype(int) - plain["image"]).mean()
    assert diff < 2, diff  # the mirrored crop (bilinear sampling differs by < 1 level)


def test_augmented_joints_stay_on_the_drawn_dots(dirs):
    """The images have a white dot at each joint: after scale, rotation, flip and gain
    the crop is bright where ``kp2d`` says the joints are."""
    aug = image_pipeline.Augment(rotation_prob=1.0, datasets=images.DATASETS)
    rng = np.random.default_rng(5)
    for rec in images.read_h36m(dirs["h36m"], "train"):
        for _ in range(4):
            ex = image_pipeline.process(rec, rng, out_size=256, augment=aug)
            lum = ex["image"].astype(float).sum(-1)
            xy = np.floor(ex["kp2d"][ex["visible"]]).astype(int)
            assert len(xy) > 8
            assert np.all(lum[xy[:, 1], xy[:, 0]] > 1.8 * np.median(lum)), ex["affine"]


def test_h36m_and_mpii_get_the_augmentation_the_spec_gives(dirs):
    rng = np.random.default_rng(0)
    h = _record(dirs, "h36m", "train")
    a = image_pipeline.process(h, rng, out_size=64, augment=image_pipeline.SPEC_AUGMENT)
    np.testing.assert_array_equal(a["image"], image_pipeline.process(h, None, out_size=64)["image"])
    m = _record(dirs, "mpii", "train")
    outs = [
        image_pipeline.process(m, rng, out_size=64, augment=image_pipeline.SPEC_AUGMENT)
        for _ in range(5)
    ]
    assert len({o["affine"].tobytes() for o in outs}) == 5


# --- readers ----------------------------------------------------------------------------


def test_mpii_reader_splits_and_crop_box(dirs):
    annot = dirs["mpii_annot"]
    train = images.read_mpii(dirs["mpii"], "train")
    valid = images.read_mpii(dirs["mpii"], "valid")
    assert [(r.frame, r.person) for r in valid] == [(0, 1), (2, 0)]
    assert [(r.frame, r.person) for r in train] == [(0, 0), (1, 0), (3, 0)]
    r = train[1]  # annot row 2
    assert r.name == "000000001.jpg" and r.image == str(dirs["mpii"] / "images" / r.name)
    np.testing.assert_allclose(r.centre, annot["center"][2] + [0, 15 * 0.5])
    assert r.scale == pytest.approx(0.5 * 1.25)
    assert not r.labelled[9] and r.labelled.sum() == 15 and r.pose3d is None
    np.testing.assert_array_equal(valid[1].visible, np.arange(J) >= 4)  # row 3: 4 occluded
    assert r.normalize == 30.0


def test_mpii_train_val_layout(dirs, tmp_path):
    annot = dirs["mpii_annot"]
    (tmp_path / "annot").mkdir()
    for split, rows in (("train", [0, 2]), ("val", [1])):
        with h5py.File(tmp_path / "annot" / f"{split}.h5", "w") as f:
            f["imgname"] = np.array([f"{annot['index'][i]:09d}.jpg".encode() for i in rows])
            for k in ("part", "center", "scale"):
                f[k] = annot[k][rows]
    train = images.read_mpii(tmp_path, "train", layout="train_val")
    valid = images.read_mpii(tmp_path, "valid", layout="train_val")
    assert [r.name for r in train] == ["000000000.jpg", "000000001.jpg"] and len(valid) == 1
    np.testing.assert_array_equal(train[1].kp2d, annot["part"][2])


def test_h36m_reader_splits_names_and_3d(dirs):
    annot = dirs["h36m_annot"]
    train = images.read_h36m(dirs["h36m"], "train")
    test = images.read_h36m(dirs["h36m"], "test")
    assert [r.subject for r in train] == ["S1", "S1", "S5"]
    assert [(r.subject, r.action, r.frame) for r in test] == [
        ("S9", "Discussion", 201),
        ("S11", "Eating", 401),
    ]
    assert train[2].name == "s_05_act_14_subact_02_ca_03/s_05_act_14_subact_02_ca_03_000011.jpg"
    np.testing.assert_array_equal(train[2].pose3d, annot["joint_3d_mono"][2].astype(np.float32))
    np.testing.assert_array_equal(train[0].centre, [112, 112])
    assert train[0].scale == pytest.approx(224 / 200)
    ex = image_pipeline.process(train[0], None, out_size=256)  # whole 224 square -> 256
    np.testing.assert_allclose(ex["kp2d"], annot["joint_2d"][0] * 256 / 224, rtol=1e-5)
    assert ex["has3d"] and ex["image"].shape == (256, 256, 3)


def test_3dhp_reader_maps_2d_into_the_crop_and_reorders(dirs):
    a = dirs["mpi_inf_3dhp_annot"]
    recs = images.read_mpi3dhp(dirs["mpi_inf_3dhp"], "test")
    assert [(r.subject, r.action, r.name) for r in recs] == [
        ("TS1", "GS", "1_7.png"),
        ("TS5", "Outdoor", "5_3.png"),
    ]
    order = images.MPI3DHP_TO_MPII
    want = (a["annot_2d"][0][order] - [100 + 368, 200 + 350]) * 368 / 736 + 184
    np.testing.assert_allclose(recs[0].kp2d, want, rtol=1e-5)
    np.testing.assert_allclose(recs[0].pose3d, a["univ_annot3"][0][order], rtol=1e-6)
    assert recs[0].pose3d[8].tolist() == pytest.approx(a["univ_annot3"][0][1].tolist())  # neck


# --- bad input ---------------------------------------------------------------------------


def test_reader_errors_name_the_file(dirs, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing or empty"):
        images.read_mpii(tmp_path / "nothing", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        images.read_h36m(tmp_path / "empty", "train")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "readme.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match=r"annotTest\.h5 not found"):
        images.read_mpi3dhp(tmp_path / "x", "test")
    (tmp_path / "x" / "annotTest.h5").write_text("not hdf5")
    with pytest.raises(images.AnnotationError, match=r"cannot read .*annotTest\.h5"):
        images.read_mpi3dhp(tmp_path / "x", "test")
    with pytest.raises(ValueError, match="unknown split"):
        images.read_mpii(dirs["mpii"], "test")


def _copy_h5(src: pathlib.Path, dst: pathlib.Path, **changes) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for k in f:
            g[k] = changes.get(k, f[k][()])


def test_joint_count_and_split_mismatches(dirs, tmp_path):
    m = tmp_path / "mpii"
    _copy_h5(dirs["mpii"] / "annot.h5", m / "annot.h5", part=np.zeros((6, 14, 2)))
    _copy_h5(dirs["mpii"] / "annot" / "valid.h5", m / "annot" / "valid.h5")
    with pytest.raises(
        images.AnnotationError,
        match=r"annot\.h5: part has shape \(6, 14, 2\); "
        r"expected \(N, 16, 2\)",
    ):
        images.read_mpii(m, "train")
    _copy_h5(dirs["mpii"] / "annot.h5", m / "annot.h5")
    _copy_h5(
        dirs["mpii"] / "annot" / "valid.h5",
        m / "annot" / "valid.h5",
        index=np.array([0, 1]),
        person=np.array([1, 1]),
    )  # (1, 1) is the test row 5
    with pytest.raises(images.AnnotationError, match=r"valid\.h5 are not training rows"):
        images.read_mpii(m, "valid")
    h = tmp_path / "h36m"
    wrong = np.array([r[5] for r in H36M_ROWS])
    wrong[3] = 1  # S9 marked as training
    _copy_h5(dirs["h36m"] / "annotSampleTest.h5", h / "annotSampleTest.h5", istrain=wrong)
    with pytest.raises(images.AnnotationError, match=r"istrain=1 .* expected istrain=0"):
        images.read_h36m(h, "test")
    _copy_h5(
        dirs["h36m"] / "annotSampleTest.h5",
        h / "annotSampleTest.h5",
        joint_3d_mono=np.zeros((6, 17, 3)),
    )
    with pytest.raises(images.AnnotationError, match=r"joint_3d_mono has shape \(6, 17, 3\)"):
        images.read_h36m(h, "train")


def _damaged(dirs, tmp_path, kind: str) -> images.ImageRecord:
    rec = _record(dirs, "mpii", "train")
    path = tmp_path / f"{kind}.jpg"
    data = pathlib.Path(rec.image).read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "undecodable":
        path.write_bytes(b"this is not an image" * 50)
    return images.ImageRecord(**{**rec.__dict__, "image": str(path), "name": path.name})


@pytest.mark.parametrize(
    "kind,why",
    [
        ("missing", "FileNotFoundError"),
        ("truncated", "truncated"),
        ("undecodable", "UnidentifiedImageError"),
    ],
)
def test_damaged_image_in_the_pipeline_names_the_file(dirs, tmp_path, kind, why):
    rec = _damaged(dirs, tmp_path, kind)
    ds = image_pipeline.image_dataset([rec], out_size=32)
    with pytest.raises(images.ImageError, match=rf"{kind}\.jpg.*{why}.*expected a complete"):
        ds[0]


def test_crop_box_outside_in_the_pipeline_names_the_file(dirs):
    rec = _record(dirs, "mpii", "train")
    off = images.ImageRecord(**{**rec.__dict__, "centre": np.array([5000.0, 10.0], np.float32)})
    with pytest.raises(images.ImageError, match=r"000000000\.jpg.*entirely outside the 320x240"):
        image_pipeline.image_dataset([off], out_size=32)[0]


# --- TFDS builds ------------------------------------------------------------------------


def _fields(r: images.ImageRecord) -> dict:
    d = dict(r.__dict__)
    d.pop("image")
    return d


def assert_same_records(got, want) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.image == pathlib.Path(w.image).read_bytes()
        gf, wf = _fields(g), _fields(w)
        for k, v in wf.items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(gf[k], v, err_msg=k)
            else:
                assert gf[k] == pytest.approx(v) if isinstance(v, float) else gf[k] == v, k


@pytest.fixture(scope="module")
def built(dirs, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    names = {"mpii": "mpii", "h36m_images": "h36m", "mpi_inf_3dhp_images": "mpi_inf_3dhp"}
    out = {}
    for name, dataset in names.items():
        for split in images.SPLITS[dataset]:
            out[name, split] = image_tfds.load_split(
                name, split, data_dir=data_dir, manual_dir=dirs[dataset]
            )
    return data_dir, out


def test_builds_read_back_equal_to_the_readers(dirs, built):
    _, sources = built
    for (name, split), source in sources.items():
        dataset = {"mpii": "mpii", "h36m_images": "h36m"}.get(name, "mpi_inf_3dhp")
        assert_same_records(
            [source[i] for i in range(len(source))], images.READERS[dataset](dirs[dataset], split)
        )
    report = image_tfds.skipped(tfds_io.builder("mpii", data_dir=built[0]))
    assert report == {"train": [], "valid": []}


def test_a_damaged_image_is_a_counted_skip(dirs, tmp_path, caplog):
    import shutil

    manual = tmp_path / "mpii"
    shutil.copytree(dirs["mpii"], manual)
    bad = manual / "images" / "000000002.jpg"  # annot row 3: the second valid row
    bad.write_bytes(bad.read_bytes()[:-2000])  # truncated inside the entropy-coded data
    with caplog.at_level(logging.WARNING, logger="posejax.data.image_tfds"):
        valid = image_tfds.load_split("mpii", "valid", data_dir=tmp_path / "d", manual_dir=manual)
    assert [r.name for r in valid] == ["000000000.jpg"]
    b = tfds_io.builder("mpii", data_dir=tmp_path / "d")
    report = image_tfds.skipped(b)
    assert report["train"] == [] and [n for n, _ in report["valid"]] == ["000000002.jpg"]
    assert "truncated" in report["valid"][0][1] or "OSError" in report["valid"][0][1]
    assert "1 damaged or missing images skipped" in caplog.text and "000000002.jpg" in caplog.text


def test_build_errors_name_what_is_missing(dirs, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        image_tfds.load_split(
            "h36m_images", "train", data_dir=tmp_path / "d", manual_dir=tmp_path / "empty"
        )
    only = tmp_path / "only_annot"
    only.mkdir()
    _copy_h5(dirs["h36m"] / "annotSampleTest.h5", only / "annotSampleTest.h5")
    with pytest.raises(FileNotFoundError, match=r"only_annot/images not found"):
        image_tfds.load_split("h36m_images", "train", data_dir=tmp_path / "d", manual_dir=only)
    with pytest.raises(FileNotFoundError, match=r"annotFullTest\.h5 not found"):
        image_tfds.load_split(
            "h36m_images", "train", data_dir=tmp_path / "d", config="full", manual_dir=dirs["h36m"]
        )


# --- the grain pipeline -----------------------------------------------------------------


def _batches(source, workers: int, n: int = 3) -> list[dict]:
    ds = feeds.loader_dataset(
        image_pipeline.image_dataset(source, out_size=48, augment=True, seed=3),
        batch_size=2,
        seed=0,
        num_workers=workers,
    )
    it = iter(ds)
    try:
        return [next(it) for _ in range(n)]
    finally:
        it.close()


def test_pipeline_with_0_and_1_workers_gives_the_same_batches(built):
    source = built[1]["mpii", "train"]  # TFDS records (bytes): pickled to the worker
    b0, b1 = _batches(source, 0), _batches(source, 1)
    for x, y in zip(b0, b1, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)
    assert b0[0]["image"].shape == (2, 48, 48, 3) and b0[0]["image"].dtype == np.uint8
    assert b0[0]["kp2d"].shape == (2, J, 2) and b0[0]["pose3d"].shape == (2, J, 3)


def test_each_epoch_draws_new_augmentations(dirs):
    recs = images.read_mpii(dirs["mpii"], "train")
    ds = image_pipeline.image_dataset(recs, out_size=32, augment=True).repeat(2)
    assert not np.array_equal(ds[0]["affine"], ds[len(recs)]["affine"])
    again = image_pipeline.image_dataset(recs, out_size=32, augment=True)
    np.testing.assert_array_equal(ds[1]["image"], again[1]["image"])  # deterministic per index


def test_loader_feed_and_eval_batches_take_the_dataset(dirs):
    recs = images.read_h36m(dirs["h36m"], "train") + images.read_h36m(dirs["h36m"], "test")
    ds = image_pipeline.image_dataset(recs, out_size=32)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    feed = feeds.LoaderFeed.from_source(ds, mesh, batch_size=4, seed=0, prefetch=1)
    try:
        batch = feed.next()
    finally:
        feed.close()
    assert batch["image"].shape == (4, 32, 32, 3) and batch["has3d"].all()
    assert isinstance(batch["kp2d"], jax.Array) and batch["dataset"].dtype == np.int32
    got = list(feeds.eval_batches(ds, 4))
    assert len(got) == 2 and got[1].valid.tolist() == [True, False, False, False]
    np.testing.assert_array_equal(got[0].data["image"][2], ds[2]["image"])


def test_decode_draft_matches_full_decode(dirs):
    """The reduced JPEG decode (box far larger than the crop) gives nearly the same crop."""
    path = tmp = dirs["mpii"] / "images" / "000000000.jpg"
    big = np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
    rec = images.ImageRecord(
        dataset="mpii",
        name=tmp.name,
        image=str(path),
        kp2d=np.zeros((J, 2), np.float32),
        labelled=np.ones(J, bool),
        visible=np.ones(J, bool),
        centre=np.array([160.0, 120.0]),
        scale=1.6,
    )
    fast = image_pipeline.process(rec, None, out_size=40)["image"].astype(int)
    full, _ = image_pipeline.crop(big, rec.centre, rec.scale, 0.0, 40)
    assert np.abs(fast - full.astype(int)).mean() < 6


def test_damaged_image_in_a_worker_process_names_the_file(dirs, tmp_path):
    rec = _damaged(dirs, tmp_path, "truncated")
    ds = feeds.loader_dataset(
        image_pipeline.image_dataset([rec, rec], out_size=32), batch_size=2, seed=0, num_workers=1
    )
    it = iter(ds)
    try:
        with pytest.raises(Exception, match=r"truncated\.jpg.*expected a complete") as e:
            next(it)
    finally:
        it.close()
    assert isinstance(e.value, images.ImageError), type(e.value)
