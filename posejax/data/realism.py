"""How realistic are generated poses? Compare pose statistics of two pose sets.

Features per frame of a ``[N, 17, 3]`` world pose (mm, z up), H36M-17 order:

* Bone direction in a body-centred heading frame: origin at the pelvis, axes (right,
  forward, up) with up = world z and right = the horizontal part of the left-to-right hip
  plus shoulder vectors. Each of the 16 bone directions is binned on the sphere in
  equal-area cells (``DIR_BINS`` = 12 bins of cos(polar angle) x 24 bins of azimuth).
* Joint angle: the angle between a bone and its parent bone, in degrees (0 = straight on),
  binned in ``ANGLE_BINS`` = 36 bins of 5 degrees. Bones that start at the pelvis (hips,
  spine) have no parent bone and no angle.

Distances per bone: the Jensen-Shannon divergence (base 2, in [0, 1]) of the two direction
histograms and of the two angle histograms, and the earth mover's (Wasserstein-1) distance
of the joint-angle distributions, in degrees, from 200 quantiles; means over all bones and
over the limb bones (thighs, shins, upper arms, forearms). JS divergence of finite
samples is biased upward, so compare numbers against a real-vs-real floor computed on sets
of similar size: the CLI compares CMU test subjects with CMU training subjects as that floor
and subsamples SynthPose (evenly spaced frames) to the size of the CMU test set.

CLI::

    python -m posejax.data.realism --cmu_dir ../shared/data/cmu-mocap --out realism.json
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from posejax.core import skeleton as skel
from posejax.data import cmu

DIR_BINS = (12, 24)
ANGLE_BINS = 36
_QUANTILES = np.linspace(0.0025, 0.9975, 200)
BONES = skel.H36M17_BONES  # [16, 2] (child, parent)
BONE_NAMES = tuple(skel.H36M17_NAMES[c] for c, _ in BONES)
# For each bone, the index in BONES of its parent bone, or -1 where the parent is the root.
PARENT_BONE = np.array([np.flatnonzero(BONES[:, 0] == p)[0] if p else -1 for _, p in BONES])


def heading_frames(poses: np.ndarray) -> np.ndarray:
    """``poses [N, 17, 3]`` (z up) -> ``[N, 3, 3]`` rows = right, forward, up (world)."""
    lr = poses[:, skel.H36M17_RIGHT[[0, 3]]] - poses[:, skel.H36M17_LEFT[[0, 3]]]
    right = lr.sum(axis=1) * np.array([1.0, 1.0, 0.0])
    right = right / np.maximum(np.linalg.norm(right, axis=-1, keepdims=True), 1e-6)
    up = np.broadcast_to(np.array([0.0, 0.0, 1.0]), right.shape)
    return np.stack([right, np.cross(up, right), up], axis=1)


def features(poses: np.ndarray) -> dict[str, np.ndarray]:
    """Pose statistics per frame.

    Args:
      poses: ``[N, 17, 3]`` mm, world frame, z up.

    Returns:
      ``directions [N, 16, 3]`` unit bone vectors in the heading frame (right, forward, up)
      and ``angles [N, 16]`` degrees between each bone and its parent bone (NaN for the
      bones that start at the pelvis).
    """
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (skel.NUM_JOINTS, 3):
        raise ValueError(f"expected poses [N, {skel.NUM_JOINTS}, 3], found {poses.shape}")
    vec = poses[:, BONES[:, 0]] - poses[:, BONES[:, 1]]
    unit = vec / np.maximum(np.linalg.norm(vec, axis=-1, keepdims=True), 1e-6)
    directions = np.einsum("nij,nbj->nbi", heading_frames(poses), unit)
    parent = unit[:, np.maximum(PARENT_BONE, 0)]
    cos = np.clip(np.sum(unit * parent, axis=-1), -1.0, 1.0)
    angles = np.where(PARENT_BONE >= 0, np.degrees(np.arccos(cos)), np.nan)
    return {"directions": directions, "angles": angles}


def direction_histogram(directions: np.ndarray, bins=DIR_BINS) -> np.ndarray:
    """``[N, 3]`` unit vectors -> ``[bins[0] * bins[1]]`` probabilities (equal-area cells)."""
    cos_polar = np.clip(directions[:, 2], -1.0, 1.0)
    azimuth = np.arctan2(directions[:, 1], directions[:, 0])
    h, _, _ = np.histogram2d(cos_polar, azimuth, bins=bins, range=[[-1.0, 1.0], [-np.pi, np.pi]])
    return h.ravel() / max(h.sum(), 1.0)


def angle_histogram(angles: np.ndarray, bins: int = ANGLE_BINS) -> np.ndarray:
    """``[N]`` degrees in [0, 180] -> ``[bins]`` probabilities."""
    h, _ = np.histogram(angles, bins=bins, range=(0.0, 180.0))
    return h / max(h.sum(), 1)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two histograms, base 2 (0 = equal, 1 = disjoint)."""
    m = 0.5 * (p + q)

    def kl(a):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def emd_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance of two 1D samples (same unit as the samples)."""
    return float(np.mean(np.abs(np.quantile(a, _QUANTILES) - np.quantile(b, _QUANTILES))))


def compare(poses_a: np.ndarray, poses_b: np.ndarray) -> dict:
    """Per-bone distances between two pose sets ``[N, 17, 3]`` and ``[M, 17, 3]`` (mm, z up).

    Returns:
      ``{'bones': {name: {...}}, 'summary': {...}, 'frames': [N, M]}``. Per bone (keyed by
      its child joint): ``direction_js``; for bones with a parent bone also ``angle_js``,
      ``angle_emd_deg`` and the mean angles ``angle_mean_a`` / ``angle_mean_b`` (degrees).
      ``summary`` holds the means over all bones; ``summary_limbs`` over the thigh, shin,
      upper-arm and forearm bones only, whose statistics reflect motion rather than where
      a data source places the torso and head joints (CMU's neck is the base of the skull,
      Human3.6M's is near the nose; clavicles differ too).
    """
    fa, fb = features(poses_a), features(poses_b)
    bones = {}
    for k, name in enumerate(BONE_NAMES):
        row = {
            "direction_js": js_divergence(
                direction_histogram(fa["directions"][:, k]),
                direction_histogram(fb["directions"][:, k]),
            )
        }
        if PARENT_BONE[k] >= 0:
            a, b = fa["angles"][:, k], fb["angles"][:, k]
            row["angle_js"] = js_divergence(angle_histogram(a), angle_histogram(b))
            row["angle_emd_deg"] = emd_1d(a, b)
            row["angle_mean_a"], row["angle_mean_b"] = float(a.mean()), float(b.mean())
        bones[name] = row
    limbs = [skel.H36M17_NAMES[j] for j in skel.LIMB_JOINTS]
    return {
        "bones": bones,
        "summary": _means(bones.values()),
        "summary_limbs": _means([bones[b] for b in limbs]),
        "frames": [len(poses_a), len(poses_b)],
    }


def _means(rows) -> dict[str, float]:
    keys = ("direction_js", "angle_js", "angle_emd_deg")
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}


def world_poses(records) -> np.ndarray:
    """Records -> ``[N, 17, 3]`` world poses, each sequence once (not once per camera)."""
    seen, out = set(), []
    for r in records:
        key = (r.subject, r.action, r.sequence)
        if key not in seen:
            seen.add(key)
            out.append(np.asarray(r.pose3d_world))
    return np.concatenate(out, axis=0)


def format_table(results: dict[str, dict]) -> str:
    """Per-bone table of several comparisons (name -> ``compare`` output)."""
    names = list(results)
    cols = [("dirJS", "direction_js", "{:.3f}"), ("angJS", "angle_js", "{:.3f}")]
    cols.append(("EMD°", "angle_emd_deg", "{:.1f}"))
    head = f"{'bone (child joint)':<20}" + "".join(
        f"{c + ' ' + n:>22}" for c, _, _ in cols for n in names
    )
    lines = [head, "-" * len(head)]
    rows = [(b, {n: results[n]["bones"][b] for n in names}) for b in BONE_NAMES]
    rows.append(("MEAN", {n: results[n]["summary"] for n in names}))
    rows.append(("MEAN limbs", {n: results[n]["summary_limbs"] for n in names}))
    for bone, per in rows:
        cells = [
            fmt.format(per[n][key]) if key in per[n] else "-" for _, key, fmt in cols for n in names
        ]
        lines.append(f"{bone:<20}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


def subsample(poses: np.ndarray, n: int) -> np.ndarray:
    """``n`` evenly spaced frames of ``poses [N, ...]`` (all of them if ``N <= n``)."""
    if len(poses) <= n:
        return poses
    return poses[np.linspace(0, len(poses) - 1, n).round().astype(int)]


def _synthpose_poses(seed: int):
    try:
        from posejax.data import synthpose
    except ImportError as e:
        print(f"SynthPose unavailable ({e}); comparing CMU subsets only", file=sys.stderr)
        return None
    return world_poses(synthpose.generate("train", seed=seed))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cmu_dir", required=True, help="folder with CMU .asf/.amc files")
    parser.add_argument("--out", default="realism.json", help="JSON file to write")
    parser.add_argument("--seed", type=int, default=0, help="SynthPose seed")
    args = parser.parse_args(argv)

    def cmu_poses(split):
        takes = {}
        for s in cmu.split_subjects(args.cmu_dir, split):
            takes.update(cmu.load_world_poses(args.cmu_dir, s))
        return np.concatenate(list(takes.values()), axis=0)

    reference, real = cmu_poses("train"), cmu_poses("test")
    results = {"cmu_test": compare(real, reference)}
    synth = _synthpose_poses(args.seed)
    if synth is not None:
        # As many frames as the real-vs-real floor, so both carry the same sampling bias.
        results["synthpose"] = compare(subsample(synth, len(real)), reference)
    print(f"reference: CMU train subjects {cmu.SPLITS['train']}, {len(reference)} frames")
    for name, r in results.items():
        print(f"{name}: {r['frames'][0]} frames")
    print(format_table(results))
    report = {
        "reference": {"source": "cmu", "subjects": list(cmu.SPLITS["train"])},
        "method": "JS divergence (base 2) of bone-direction histograms in the heading frame "
        f"{DIR_BINS} and joint-angle histograms ({ANGLE_BINS} x 5 deg); angle EMD in degrees",
        "comparisons": results,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
