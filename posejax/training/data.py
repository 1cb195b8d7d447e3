"""From a config's ``data`` section to device-resident splits."""

from __future__ import annotations

from posejax.data import device, sources
from posejax.training import distributed


def source_kwargs(data_cfg) -> dict:
    """Keyword arguments of ``sources.load`` for ``data_cfg.source``."""
    name = data_cfg.source
    if name not in sources.SOURCES:
        hint = ""
        if any(n in ("h36m_images", "mpii", "mpi_inf_3dhp_images") for n in name.split(",")):
            hint = (" (real image datasets are not pose sources: an image method streams them "
                    "with data.images, e.g. configs/hourglass.py:real, data.images="
                    "'h36m_images,mpii')")  # fmt: skip
        raise KeyError(
            f"unknown data.source {name!r}; expected one of {sorted(sources.SOURCES)}{hint}"
        )
    if data_cfg.via_tfds:
        kw = {"data_dir": data_cfg.tfds_dir or None}
        if name == "synthpose":
            kw["config"] = data_cfg.synthpose.tfds_config
        elif name == "h36m":
            kw["manual_dir"] = data_cfg.h36m.dir or None
            kw["config"] = data_cfg.h36m.detections or "gt"
        elif name == "cmu_mocap":
            kw["manual_dir"] = data_cfg.cmu_mocap.dir or None
        elif name == "mpi_inf_3dhp":
            kw["manual_dir"] = data_cfg.mpi_inf_3dhp.dir or None
            kw["config"] = data_cfg.mpi_inf_3dhp.detections or "gt"
        return kw
    if name == "synthpose":
        from posejax.data import synthpose

        s = data_cfg.synthpose
        cfg = synthpose.SynthPoseConfig(
            frames_per_sequence=s.frames_per_sequence, sequences_per_action=s.sequences_per_action
        )
        return {"seed": s.seed, "config": cfg}
    if name == "h36m":
        h = data_cfg.h36m
        if not h.dir:
            raise ValueError("data.source='h36m' needs data.h36m.dir (VideoPose3D npz folder)")
        return {"directory": h.dir, "detections": h.detections or None}
    if name == "mpi_inf_3dhp":
        m = data_cfg.mpi_inf_3dhp
        if not m.dir:
            raise ValueError("data.source='mpi_inf_3dhp' needs data.mpi_inf_3dhp.dir (npz folder)")
        return {"directory": m.dir, "detections": m.detections or None}
    c = data_cfg.cmu_mocap
    if not c.dir:
        raise ValueError("data.source='cmu_mocap' needs data.cmu_mocap.dir (ASF/AMC folder)")
    return {"directory": c.dir}


def load_records(data_cfg, split: str):
    return sources.load(
        data_cfg.source, split, via_tfds=data_cfg.via_tfds, **source_kwargs(data_cfg)
    )


def load_split(config, split: str, mesh, *, stride: int = 1, pad_to: int = 1):
    """``DeviceDataset`` of ``split``, checked for NaN, placed on ``mesh``."""
    records = load_records(config.data, split)
    ds = device.DeviceDataset.from_records(
        records, input_2d=config.data.input_2d, mesh=mesh, stride=stride, pad_to=pad_to
    )
    device.check_finite(ds.host, f"{config.data.source}/{split}")
    distributed.check_same_on_all_processes(ds.host, f"{config.data.source}/{split}")
    return ds
