"""``python -m posejax.predict``: 2D keypoint files in, 3D hypotheses and pictures out.

Example (a SynthPose sequence exported as COCO JSON, ``posejax.keypoints``)::

  python -m posejax.keypoints export-synthpose --out demo --format coco
  python -m posejax.predict --workdir runs/gan_gt_quick \\
      --keypoints demo/synthpose_s9_walking_cam0_coco.json --format coco \\
      --image_size 1000,1002 --out demo/pred

Reads the keypoints (``--format h36m`` (``.npy``/``.npz``), ``coco`` or ``openpose``; see
``posejax.keypoints`` for the layouts and the joint mappings), maps them to the training
camera (``--intrinsics fx,fy,cx,cy[,k1,k2,k3,p1,p2]``, else ``--image_size W,H`` with
f = 1.15 max(W, H) and the centre as principal point, else the intrinsics an npz file
carries, else a Human3.6M-like camera is assumed), samples ``--num_samples`` hypotheses
per frame, aggregates them (``--aggregate``, ``posejax.core.aggregate``) and writes
``OUT/predictions.npz`` plus ``OUT/frame_<i>.png`` per frame (short inputs) or
``OUT/sequence.png`` (a strip of ``--grid_frames`` frames, longer ones).

The npz holds the draws (``hypotheses [T, S, 17, 3]``, their ``aggregate`` and the
deterministic ``lift``) and the method's own hypotheses with their weights
(``Predictor.hypotheses``): ``native_hypotheses [T, K, 17, 3]`` and ``native_weights
[T, K]`` (summing to 1 per frame): ``mdn``'s K kernel means with their mixing weights,
highest first (its draws are much noisier than the means); for ``gan`` / ``ans`` the same
S draws with weights 1 / S; K = 1 for single-hypothesis methods. All poses in mm.

Image methods (``hourglass``): ``--images FILE_OR_DIR [--boxes JSON]`` instead of
``--keypoints``/``--format``; ``posejax.predict_images``.

Missing keypoints (confidence below ``--conf_threshold`` or at (0, 0)) are passed as a
mask to methods that support one (``mdn``: up to 2 limb joints per frame); for the other
methods a missing joint the method reads is an error naming the frames and joints.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from posejax import cli
from posejax import keypoints as kpio
from posejax.core import aggregate as agg
from posejax.core import metrics
from posejax.core import skeleton as skel

UNITS = "mm, camera frame (x right, y down, z forward), root-relative (pelvis 0), H36M-17"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m posejax.predict",
        description=__doc__.split("\n")[0],
        epilog="OUT/predictions.npz: hypotheses [T, S, 17, 3] (S draws), aggregate and lift "
        "[T, 17, 3], native_hypotheses [T, K, 17, 3] and native_weights [T, K] (the method's "
        "own hypotheses and their weights: mdn's K kernel means, gan/ans's S draws with "
        "weights 1/S, K = 1 otherwise), the input 2D and meta; poses in mm.",
    )
    p.add_argument("--workdir", required=True, help="trained workdir (or checkpoints/<step>)")
    p.add_argument("--keypoints", help="2D keypoint file or OpenPose directory")
    p.add_argument("--format", choices=[*kpio.FORMATS, "npy", "npz"], help="with --keypoints")
    p.add_argument("--images", help="image methods: an image file or a directory of them")
    p.add_argument("--boxes", help="with --images: person boxes, COCO-style JSON")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--intrinsics", help="fx,fy,cx,cy (px) or 9 values with distortion")
    p.add_argument("--image_size", help="W,H px (f = 1.15 max(W, H), centre principal point)")
    p.add_argument(
        "--num_samples", type=int, default=100,
        help="draws per frame (native_hypotheses: mdn's K means whatever this says)",
    )  # fmt: skip
    p.add_argument("--aggregate", default="reproj_pose", choices=agg.METHODS)
    p.add_argument("--temperature", type=float, default=agg.DEFAULT_TEMPERATURE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conf_threshold", type=float, default=kpio.DEFAULT_CONF_THRESHOLD)
    p.add_argument("--batch_size", type=int, default=512, help="frames per device call")
    p.add_argument("--png", default="auto", choices=["auto", "frames", "grid", "none"])
    p.add_argument("--grid_frames", type=int, default=8)
    p.add_argument("--step", type=int, default=None)
    p.add_argument("--best", action="store_true")
    args = p.parse_args(argv)
    if (args.keypoints is None) == (args.images is None):
        p.error("give one of --keypoints (2D keypoint methods) or --images (image methods)")
    if args.keypoints is not None and args.format is None:
        p.error("--keypoints needs --format")
    if args.boxes and not args.images:
        p.error("--boxes goes with --images")
    return args


def _floats(text, n, flag):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in n:
        raise ValueError(
            f"--{flag} expects {' or '.join(map(str, n))} comma-separated numbers, found {text!r}"
        )
    return np.asarray(values, np.float32)


def camera_of(args, kp: kpio.Keypoints):
    """``(intrinsics [4|9] or None, a sentence saying where they came from)``."""
    from posejax import inference

    if args.intrinsics:
        return _floats(args.intrinsics, (4, 9), "intrinsics"), "--intrinsics"
    if args.image_size:
        w, h = _floats(args.image_size, (2,), "image_size")
        return inference.intrinsics_from_image_size(w, h), f"--image_size {w:g}x{h:g}"
    if kp.intrinsics is not None:
        return np.asarray(kp.intrinsics, np.float32), f"intrinsics stored in {kp.path}"
    if kp.image_size is not None:
        return inference.intrinsics_from_image_size(*kp.image_size), "image_size in the file"
    return None, "none given: a Human3.6M-like camera (1000 x 1000 px, f ~ 1146 px) assumed"


def run(args) -> dict:
    """Everything but argument parsing; returns the arrays written to the npz."""
    from tqdm import tqdm

    from posejax import inference

    kp = kpio.read(args.keypoints, args.format, args.conf_threshold)
    intrinsics, source = camera_of(args, kp)
    print(f"{kp.num_frames} frames from {kp.path} ({kp.format}); camera: {source}", file=sys.stderr)
    predictor = inference.load_predictor(args.workdir, step=args.step, best=args.best)
    if getattr(predictor, "input_kind", "pose2d") != "pose2d":
        raise ValueError(
            f"--keypoints needs a 2D-keypoint method; {args.workdir} holds {predictor.name!r}, "
            f"which takes {predictor.input_kind} input: use --images [--boxes]"
        )
    num = args.num_samples if predictor.multi_hypothesis else 1
    kp2d, _ = predictor.check_input(kp.kp2d, kp.missing, frame_names=kp.frames)
    outs, native = [], []
    bar = tqdm(
        total=kp.num_frames, unit="frame", disable=kp.num_frames <= args.batch_size, file=sys.stderr
    )
    for start in range(0, kp.num_frames, args.batch_size):
        sl = slice(start, start + args.batch_size)
        k = intrinsics if intrinsics is None or intrinsics.ndim == 1 else intrinsics[sl]
        out = predictor.predict(
            kp2d[sl],
            args.seed,
            num,
            k,
            hidden=kp.missing[sl],
            aggregate=args.aggregate,
            temperature=args.temperature,
            first_index=start,
        )
        outs.append(out)
        native.append(
            predictor.hypotheses(
                kp2d[sl], k, hidden=kp.missing[sl], key=args.seed, num_samples=num,
                first_index=start,
            )
        )  # fmt: skip
        bar.update(len(kp2d[sl]))
    bar.close()
    res = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    res["native_hypotheses"] = np.concatenate([h.poses for h in native])
    res["native_weights"] = np.concatenate([h.weights for h in native])
    # Reprojection of the aggregate into the input image (for the pictures).
    cam = inference.TRAINING_INTRINSICS if intrinsics is None else intrinsics
    vis = predictor.predicted_joints & ~kp.missing
    res["aggregate_reprojected_px"] = np.asarray(
        agg.project_fitted(res["aggregate"], kp2d, cam, vis)
    )
    meta = {
        "workdir": str(args.workdir),
        "method": predictor.name,
        "step": predictor.step,
        "num_samples": num,
        "native_hypotheses": predictor.hypotheses_kind,
        "aggregate": args.aggregate,
        "temperature": args.temperature,
        "seed": args.seed,
        "keypoints": kp.path,
        "format": kp.format,
        "camera": source,
        "intrinsics": None if intrinsics is None else intrinsics.tolist(),
        "units": UNITS,
        "sample_keys": "frame i uses fold_in(key(seed), i)",
        "predicted_joints": np.nonzero(predictor.predicted_joints)[0].tolist(),
    }
    res.update(
        kp2d=kp.kp2d,
        missing=kp.missing,
        confidence=kp.confidence,
        frames=np.asarray(kp.frames),
        joint_names=np.asarray(skel.H36M17_NAMES),
        meta=np.asarray(json.dumps(meta)),
    )
    if kp.pose3d is not None:
        res["pose3d_gt"] = np.asarray(kp.pose3d, np.float32)
        _print_errors(res, predictor.predicted_joints)
    return res


def _print_errors(res, joints):
    gt, idx = res["pose3d_gt"], np.flatnonzero(joints)
    agg_err = metrics.mpjpe(res["aggregate"], gt, idx).mean()
    lift_err = metrics.mpjpe(res["lift"], gt, idx).mean()
    best = metrics.mpjpe(res["hypotheses"], gt[:, None], idx).min(1).mean()
    print(
        f"against the file's pose3d (MPJPE, {int(joints.sum())} joints): aggregate "
        f"{agg_err:.1f} mm, deterministic {lift_err:.1f} mm, best of "
        f"{res['hypotheses'].shape[1]} {best:.1f} mm"
    )


def write_pictures(res, out: pathlib.Path, mode: str, grid_frames: int) -> list:
    from posejax import viz

    t = len(res["kp2d"])
    if mode == "none":
        return []
    if mode == "auto":
        mode = "frames" if t <= grid_frames else "grid"
    gt = res.get("pose3d_gt")
    meta = json.loads(str(res["meta"]))
    name = f"{meta['method']} step {meta['step']}, aggregate {meta['aggregate']}"
    paths = []

    def poses(ix):  # what both figures draw of frames ``ix``
        truth = None if gt is None else gt[ix]
        return res["kp2d"][ix], res["hypotheses"][ix], res["aggregate"][ix], truth

    if mode == "frames":
        for i in range(t):
            fig = viz.prediction_figure(
                *poses(i),
                hidden=res["missing"][i],
                reprojection=res["aggregate_reprojected_px"][i],
                title=f"{name}: frame {res['frames'][i]}",
            )
            paths.append(out / f"frame_{i:05d}.png")
            fig.savefig(paths[-1], dpi=80)
        return paths
    idx = np.unique(np.linspace(0, t - 1, min(t, grid_frames)).astype(int))
    fig = viz.sequence_strip(
        *poses(idx),
        hidden=res["missing"][idx],
        frame_labels=[f"frame {res['frames'][i]}" for i in idx],
        title=f"{name}: hypotheses (blue), aggregate (red)"
        + (", truth (black)" if gt is not None else ""),
    )
    paths.append(out / "sequence.png")
    fig.savefig(paths[-1], dpi=80)
    return paths


def main(argv=None):
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    if args.images:
        return _main_images(args, out)
    res = run(args)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "predictions.npz", **res)
    paths = write_pictures(res, out, args.png, args.grid_frames)
    print(
        f"wrote {out / 'predictions.npz'} (hypotheses {res['hypotheses'].shape}, "
        f"native_hypotheses {res['native_hypotheses'].shape}, "
        f"aggregate {res['aggregate'].shape}; {UNITS})"
        + (f" and {len(paths)} PNG(s)" if paths else "")
    )
    return res


def _main_images(args, out: pathlib.Path) -> dict:
    from posejax import inference, predict_images

    predictor = inference.load_predictor(args.workdir, step=args.step, best=args.best)
    if getattr(predictor, "input_kind", "pose2d") != "image":
        raise ValueError(
            f"--images needs an image method; {args.workdir} holds {predictor.name!r}, which "
            "takes 2D keypoints: use --keypoints and --format"
        )
    res = predict_images.run(args, predictor)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "predictions.npz", **res)
    paths = [] if args.png == "none" else predict_images.write_pictures(res, out, predictor)
    print(f"wrote {out / 'predictions.npz'} (pose3d {res['pose3d'].shape}; "
          f"{predict_images.UNITS}) and {len(paths)} PNG(s)")  # fmt: skip
    return res


if __name__ == "__main__":
    cli.run(main)
