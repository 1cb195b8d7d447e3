"""Skeleton definitions: Human3.6M 32- and 17-joint orders and the subsets methods use.

The canonical order everywhere in posejax is Human3.6M-17 in VideoPose3D order
(``shared/spec/evaluation.md`` section 1.1). Every other joint set is an index
array into it, so ``pose17[..., SUBSET, :]`` gathers a subset and
``scatter_from_subset`` puts it back.
"""

from __future__ import annotations

import numpy as np

H36M32_NAMES = (
    "hip", "r_hip", "r_knee", "r_foot", "r_toe", "r_site",
    "l_hip", "l_knee", "l_foot", "l_toe", "l_site",
    "hip2", "spine", "thorax", "neck_nose", "head", "head_site",
    "l_shoulder0", "l_shoulder", "l_elbow", "l_wrist", "l_thumb", "l_site2",
    "l_wrist_end", "l_thumb_end",
    "r_shoulder0", "r_shoulder", "r_elbow", "r_wrist", "r_thumb", "r_site2",
    "r_wrist_end",
)  # fmt: skip
# The names are only labels; what matters is which 17 of the 32 move.
H36M32_TO_17 = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])

H36M17_NAMES = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "spine", "thorax", "neck_nose", "head",
    "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
)  # fmt: skip
H36M17_PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15])
H36M17_LEFT = np.array([4, 5, 6, 11, 12, 13])
H36M17_RIGHT = np.array([1, 2, 3, 14, 15, 16])
NUM_JOINTS = 17
ROOT = 0


def flip_permutation(left=H36M17_LEFT, right=H36M17_RIGHT, num_joints=NUM_JOINTS):
    """Index array that swaps left and right joints: ``pose[..., perm, :]``."""
    perm = np.arange(num_joints)
    perm[left] = right
    perm[right] = left
    return perm


H36M17_FLIP = flip_permutation()

# Bones as (child, parent) pairs, one per non-root joint.
H36M17_BONES = np.array([(j, p) for j, p in enumerate(H36M17_PARENTS) if p >= 0])

# Joint subsets of the methods, as H36M-17 indices (evaluation.md section 1.2).
SUBSETS = {
    "h36m17": np.arange(17),
    "wsgn16": np.array([1, 2, 3, 4, 5, 6, 0, 8, 9, 10, 11, 12, 13, 14, 15, 16]),
    "mdn_in16": np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]),
    "mdn_out16": np.arange(1, 17),
    "mpii16": np.array([3, 2, 1, 4, 5, 6, 0, 7, 8, 10, 16, 15, 14, 11, 12, 13]),
    "pose_machines16": np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]),
    # MPI-INF-3DHP 14-joint PCK set (head top, neck, shoulders, elbows, wrists, hips,
    # knees, ankles) expressed in H36M-17 slots.
    "pck14": np.array([10, 8, 14, 15, 16, 11, 12, 13, 1, 2, 3, 4, 5, 6]),
}

# Limb joints at MDN input positions [2, 3, 5, 6, 11, 12, 14, 15] of mdn_in16, i.e.
# knees, ankles, elbows and wrists (mdn.md section 6), as H36M-17 indices.
LIMB_JOINTS = np.array([2, 3, 5, 6, 12, 13, 15, 16])


def subset(name: str) -> np.ndarray:
    """Returns the H36M-17 indices of a named joint subset; unknown names list the valid ones."""
    if name not in SUBSETS:
        raise KeyError(f"unknown joint subset {name!r}; expected one of {sorted(SUBSETS)}")
    return SUBSETS[name]


def scatter_from_subset(values, indices, num_joints=NUM_JOINTS, fill=0.0):
    """Inverse of a gather: ``values [..., len(indices), D]`` -> ``[..., num_joints, D]``.

    Joints outside ``indices`` get ``fill``. Works for numpy and jax arrays.
    """
    import jax.numpy as jnp

    xp = np if isinstance(values, np.ndarray) else jnp
    indices = np.asarray(indices)
    if values.shape[-2] != len(indices):
        raise ValueError(f"expected {len(indices)} joints on axis -2, found shape {values.shape}")
    if xp is np:
        out = np.full(values.shape[:-2] + (num_joints, values.shape[-1]), fill, values.dtype)
        out[..., indices, :] = values
        return out
    # Slices of contiguous runs and one concatenate: XLA runs a scatter (``.at[].set``)
    # as a loop on CPU, 15-20x slower than this for [B, S, 17, 3] hypothesis outputs.
    slot = {int(j): i for i, j in enumerate(indices)}
    fill_row = jnp.full(values.shape[:-2] + (1, values.shape[-1]), fill, values.dtype)
    parts, j = [], 0
    while j < num_joints:
        if j not in slot:
            parts.append(fill_row)
            j += 1
            continue
        k = j
        while slot.get(k + 1, -1) == slot[k] + 1:
            k += 1
        parts.append(values[..., slot[j] : slot[k] + 1, :])
        j = k + 1
    return jnp.concatenate(parts, axis=-2)


# Human3.6M action names, in the fixed table order of evaluation.md section 6.
H36M_ACTIONS = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
    "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
    "WalkTogether",
)  # fmt: skip


def action_of(sequence_name: str) -> str:
    """``'Directions 1'`` -> ``'Directions'`` (prefix before the first space)."""
    base = sequence_name.split(" ")[0]
    # VideoPose3D keys use "TakingPhoto"/"WalkingDog" in some subjects.
    aliases = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}
    return aliases.get(base, base)
