"""Real image datasets: decoding, the crop convention, augmentation and the grain
pipeline of ``ImageRecord``s.

One of three modules, imported one way (``images`` <- ``image_pipeline`` <-
``image_tfds``): ``posejax.data.images`` holds the record type, its errors and the
annotation readers; ``posejax.data.image_tfds`` the TFDS storage, whose builders check
each image with ``read_checked`` and whose ``load_split`` gives records that
``image_dataset`` takes.

Coordinates and the crop box are ``images``': continuous px with the image's top-left
corner at (0, 0); a square box of side ``BOX_UNIT_PX * scale`` px centred at ``centre``.
``crop_affine`` maps image px to crop px: ``x' = k R (x - c) + S/2`` with
``k = S / (200 s)`` and R a rotation of ``rotation`` degrees counter-clockwise on screen
(the official ``getTransform``); a flip then maps ``x' -> S - x'``. So the box centre lands
at the crop centre (S/2, S/2) and the box corners at the crop corners.

The pipeline (``image_dataset``) is a grain ``MapDataset`` of numeric dicts, ready for
``posejax.training.feeds``: ``LoaderFeed.from_source(image_dataset(...), mesh,
batch_size=..., seed=..., num_workers=...)`` for training (the random map sits upstream
of the feed's ``shuffle().repeat()``, so each epoch draws new augmentations), and
``eval_batches(image_dataset(...), batch_size)`` for evaluation.
"""

from __future__ import annotations

import dataclasses
import io
import math
import pathlib

import grain
import numpy as np
from PIL import Image

from posejax.data import images

_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


# --- decode, crop, augmentation ---------------------------------------------------------


def crop_affine(
    centre, scale: float, rotation: float = 0.0, out_size: int = 256, *, flip: bool = False
) -> np.ndarray:
    """``[2, 3]`` float64 affine from image px to crop px (module docstring convention).

    Args:
      centre: ``[2]`` px, the box centre. scale: box side / 200 px (> 0).
      rotation: degrees, counter-clockwise on screen. out_size: S, the crop side in px.
      flip: mirror the crop horizontally afterwards (``x' -> S - x'``).
    """
    centre = np.asarray(centre, np.float64).reshape(2)
    if not (np.isfinite(centre).all() and np.isfinite(scale) and scale > 0):
        raise ValueError(f"crop box needs a finite centre and scale > 0, got {centre}, {scale}")
    k = out_size / (images.BOX_UNIT_PX * scale)
    t = math.radians(rotation)
    lin = k * np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    shift = out_size / 2 - lin @ centre
    if flip:
        lin, shift = np.array([[-1.0, 0], [0, 1]]) @ lin, np.array([out_size - shift[0], shift[1]])
    return np.concatenate([lin, shift[:, None]], 1)


def transform_points(points, affine) -> np.ndarray:
    """``[..., 2]`` px through a ``[2, 3]`` affine, float32."""
    p = np.asarray(points, np.float64)
    a = np.asarray(affine, np.float64)
    return (p @ a[:, :2].T + a[:, 2]).astype(np.float32)


def _check_box(affine, out_size: int, width: int, height: int) -> None:
    """Raises ``ValueError`` when the crop box misses the ``width x height`` image."""
    inv = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))[:2]
    corners = transform_points([[0, 0], [out_size, 0], [0, out_size], [out_size, out_size]], inv)
    lo, hi = corners.min(0), corners.max(0)
    if hi[0] <= 0 or hi[1] <= 0 or lo[0] >= width or lo[1] >= height:
        raise ValueError(
            f"the crop box (x {lo[0]:.1f}..{hi[0]:.1f}, y {lo[1]:.1f}..{hi[1]:.1f} px) lies "
            f"entirely outside the {width}x{height} image"
        )


def _warp(im: Image.Image, affine: np.ndarray, out_size: int) -> Image.Image:
    """Bilinear warp of ``im`` (RGB) by ``affine`` (im px -> crop px) to an ``S x S`` image.

    A box more than twice the crop is first box-filtered by an integer factor (PIL
    ``reduce``: exact in this convention, x -> x / k), so downscaling does not alias.
    """
    _check_box(affine, out_size, *im.size)
    k = int(1.0 / math.sqrt(abs(np.linalg.det(affine[:, :2]))))
    if k >= 2:
        im = im.reduce(k)
        affine = np.concatenate([affine[:, :2] * k, affine[:, 2:]], 1)
    inv = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))[:2]
    out = im.transform(
        (out_size, out_size),
        Image.Transform.AFFINE,
        tuple(inv.ravel()),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )
    return out


def crop(
    image, centre, scale: float, rotation: float = 0.0, out_size: int = 256, *, flip: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Crops the box ``(centre, 200 scale px, rotation)`` of ``image`` to ``S x S``.

    Args:
      image: ``[H, W, 3]`` uint8 array or a PIL image. Other arguments: ``crop_affine``.

    Returns:
      ``(crop [S, S, 3] uint8, affine [2, 3])``: pixels outside the image are black;
      ``transform_points(kp2d, affine)`` gives the joints in crop px.

    Raises:
      ValueError: the box lies entirely outside the image, or a bad centre / scale.
    """
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, np.uint8))
    affine = crop_affine(centre, scale, rotation, out_size, flip=flip)
    return np.asarray(_warp(im.convert("RGB"), affine, out_size), np.uint8), affine


def decode(data: str | bytes, *, shrink: float = 1.0) -> tuple[Image.Image, float]:
    """Opens and decodes an image file (path) or encoded bytes as RGB.

    Args:
      shrink: how much smaller than the file the image may be decoded (>= 1); a JPEG
        is then decoded by libjpeg at 1/2, 1/4 or 1/8 size (``Image.draft``), the
        largest of those not above ``shrink``.

    Returns:
      ``(image, d)``: the decoded image, whose px are the file's px divided by ``d``.

    Raises:
      OSError, ValueError, SyntaxError, ...: PIL's errors for missing, truncated or
      undecodable files (``process`` turns them into an ``images.ImageError`` naming
      the file).
    """
    im = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    d = 1.0
    if shrink >= 2 and im.format == "JPEG":
        w, h = im.size
        drafted = im.draft("RGB", (math.ceil(w / shrink), math.ceil(h / shrink)))
        if drafted is not None:
            d = w / drafted[1][2]
    im.load()
    return im.convert("RGB") if im.mode != "RGB" else im, d


@dataclasses.dataclass(frozen=True)
class Augment:
    """The random crop augmentation (spec §6 and errata 6; defaults are the spec's).

    scale ``s 2^r``, ``r ~ N(0, scale_sd)`` clipped to +-2 sd; rotation
    ``N(0, rotation_sd)`` degrees clipped to +-2 sd with probability ``rotation_prob``
    (else 0); a horizontal flip with L/R swap with probability ``flip_prob``; a gain per
    colour channel ``U(gain)`` then clamping. Applied to records of ``datasets`` only
    (the spec: MPII only; H36M gets none).
    """

    scale_sd: float = 0.25
    rotation_sd: float = 30.0
    rotation_prob: float = 0.4
    flip_prob: float = 0.5
    gain: tuple[float, float] = (0.6, 1.4)
    datasets: tuple[str, ...] = ("mpii",)

    def draw(self, rng: np.random.Generator) -> tuple[float, float, bool, np.ndarray]:
        """``(scale factor, rotation degrees, flip, gain [3])`` from ``rng``."""
        r = float(np.clip(rng.normal() * self.scale_sd, -2 * self.scale_sd, 2 * self.scale_sd))
        rot = float(
            np.clip(rng.normal() * self.rotation_sd, -2 * self.rotation_sd, 2 * self.rotation_sd)
        )
        rot = rot if rng.random() < self.rotation_prob else 0.0
        flip = bool(rng.random() < self.flip_prob)
        return 2.0**r, rot, flip, rng.uniform(*self.gain, size=3)


SPEC_AUGMENT = Augment()


def _where(record: images.ImageRecord) -> str:
    src = record.image if isinstance(record.image, str) else "bytes stored in its TFDS example"
    return f"{record.dataset} image {record.name!r} ({src})"


def process(
    record: images.ImageRecord,
    rng: np.random.Generator | None,
    *,
    out_size: int = 256,
    augment: Augment | None = None,
) -> dict:
    """Decodes, (augments,) crops one record: the example dict of ``image_dataset``.

    Returns:
      ``image [S, S, 3]`` uint8; ``kp2d [16, 2]`` float32 crop px; ``labelled [16]``;
      ``visible [16]`` (visible and inside the crop); ``pose3d [16, 3]`` float32 mm
      (zeros where ``has3d`` is false; an augmented one is rotated about the camera's z
      axis and mirrored in x like the image, exact for a principal point at the crop
      centre); ``has3d``; ``affine [2, 3]`` float32 image px -> crop px; ``dataset``
      int32 (index in ``images.DATASETS``).

    Raises:
      images.ImageError: the file is missing or undecodable, or the box is off the
        image; the message names the file.
    """
    factor, rot, flip, gain = 1.0, 0.0, False, None
    if augment is not None and record.dataset in augment.datasets and rng is not None:
        factor, rot, flip, gain = augment.draw(rng)
    affine = crop_affine(record.centre, record.scale * factor, rot, out_size, flip=flip)
    try:
        im, d = decode(record.image, shrink=images.BOX_UNIT_PX * record.scale * factor / out_size)
        _check_box(affine, out_size, *(round(n * d) for n in im.size))  # in file px
        img = _warp(im, np.concatenate([affine[:, :2] * d, affine[:, 2:]], 1), out_size)
    except _IMAGE_ERRORS as e:
        raise images.ImageError(
            f"{_where(record)}: {type(e).__name__}: {e}; expected a complete JPEG or PNG "
            f"holding the person at centre {np.round(record.centre, 1).tolist()} px, box side "
            f"{images.BOX_UNIT_PX * record.scale:.1f} px"
        ) from e
    if gain is not None:  # one 256-entry table per channel: 10x faster than float maths
        lut = np.minimum(np.arange(256) * gain[:, None] + 0.5, 255).astype(np.uint8)
        img = img.point(lut.ravel().tolist())
    img = np.asarray(img, np.uint8)
    kp2d = transform_points(record.kp2d, affine)
    labelled, visible = np.asarray(record.labelled, bool), np.asarray(record.visible, bool)
    has3d = record.pose3d is not None
    pose3d = np.zeros((images.NUM_JOINTS, 3), np.float32) if not has3d else record.pose3d.copy()
    if has3d and rot:
        t = math.radians(rot)
        lin = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]], np.float32)
        pose3d[:, :2] = pose3d[:, :2] @ lin.T
    if flip:
        perm = images.FLIP_PERM
        kp2d, labelled, visible = kp2d[perm], labelled[perm], visible[perm]
        pose3d = pose3d[perm] * np.array([-1, 1, 1], np.float32)
    inside = np.all((kp2d >= 0) & (kp2d < out_size), -1)
    return {
        "image": img,
        "kp2d": kp2d,
        "labelled": labelled,
        "visible": visible & inside,
        "pose3d": pose3d.astype(np.float32),
        "has3d": np.bool_(has3d),
        "affine": affine.astype(np.float32),
        "dataset": np.int32(images.DATASETS.index(record.dataset)),
    }


def read_checked(record: images.ImageRecord) -> bytes:
    """The file bytes of ``record``, checked to decode and to hold its crop box (the TFDS
    builders' check before they store an image).

    Raises:
      images.ImageError: missing, truncated or undecodable file, or box off the image
        (named).
    """
    try:
        data = (
            record.image
            if isinstance(record.image, bytes)
            else pathlib.Path(record.image).read_bytes()
        )
        im, d = decode(data, shrink=8.0)  # a full entropy decode at 1/8 size: cheap
        affine = crop_affine(record.centre, record.scale, 0.0, 64)
        _check_box(affine, 64, *(round(n * d) for n in im.size))
    except _IMAGE_ERRORS as e:
        raise images.ImageError(f"{_where(record)}: {type(e).__name__}: {e}") from e
    return data


# --- the grain pipeline -------------------------------------------------------------------


def from_example(ex: dict) -> images.ImageRecord:
    """An ``ImageRecord`` (``image`` = the stored bytes) from ``as_data_source``'s dict.

    The inverse of ``image_tfds.to_example``, kept here so that the pipeline takes TFDS
    example dicts without importing the TFDS storage (which imports this module).
    """
    text = lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v)  # noqa: E731
    return images.ImageRecord(
        dataset=text(ex["dataset"]),
        name=text(ex["name"]),
        image=bytes(ex["image"]),
        kp2d=np.asarray(ex["kp2d"], np.float32),
        labelled=np.asarray(ex["labelled"], bool),
        visible=np.asarray(ex["visible"], bool),
        centre=np.asarray(ex["centre"], np.float32),
        scale=float(ex["scale"]),
        pose3d=np.asarray(ex["pose3d"], np.float32) if ex["has3d"] else None,
        **{k: text(ex[k]) for k in ("subject", "action", "sequence", "camera")},
        frame=int(ex["frame"]),
        person=int(ex["person"]),
        normalize=float(ex["normalize"]),
    )


class ImageTransform(grain.transforms.RandomMap):
    """``process`` as a picklable grain random map (records or TFDS example dicts in)."""

    def __init__(self, out_size: int = 256, augment: Augment | None = None):
        self.out_size, self.augment = out_size, augment

    def random_map(self, element, rng: np.random.Generator) -> dict:
        record = element if isinstance(element, images.ImageRecord) else from_example(element)
        return process(record, rng, out_size=self.out_size, augment=self.augment)


def image_dataset(
    records, *, out_size: int = 256, augment: Augment | bool = False, seed: int = 0
) -> grain.MapDataset:
    """The examples of ``records`` as a grain ``MapDataset`` (``process`` per element).

    Args:
      records: a random-access sequence of ``images.ImageRecord`` (a reader's list, or
        ``image_tfds.load_split``'s TFDS source), or of TFDS example dicts.
      out_size: S, the crop side in px.
      augment: ``True`` is ``SPEC_AUGMENT`` (MPII records only); an ``Augment``; or
        ``False`` (none: evaluation).
      seed: the augmentation seed; element i draws from (seed, i), and i grows by
        ``len(records)`` each epoch of a ``shuffle().repeat()`` downstream (grain
        reseeds upstream random maps per epoch), so epochs differ.

    Worker processes (``mp_prefetch``, ``feeds.loader_dataset(num_workers=...)``) pickle
    the dataset: records holding bytes travel to every worker; paths are cheap.
    """
    aug = SPEC_AUGMENT if augment is True else (augment or None)
    src = records if isinstance(records, grain.MapDataset) else grain.MapDataset.source(records)
    return src.random_map(ImageTransform(out_size, aug), seed=seed)
