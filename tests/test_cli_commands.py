"""One-line errors from every command (train, evaluate, aggregate, tfds_io, gallery): each
bad input gets ``error: <what>`` on stderr, exit status 2 and no traceback
(``tests/test_cli.py`` covers ``predict`` and the helper).

The cases run as subprocesses, a few at a time."""

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from posejax import methods
from posejax.data import device, synthpose
from posejax.training import checkpoint as ckpt_lib
from posejax.training import lock
from tests.helpers import REPO, smoke_config

pytestmark = pytest.mark.slow
SMOKE = f"--config={REPO / 'configs' / 'baseline.py'}:smoke"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A baseline workdir with one checkpoint (step 1), written without training."""
    path = tmp_path_factory.mktemp("cli") / "wd"
    config = smoke_config("baseline")
    method = methods.get("baseline")(config)
    cfg = synthpose.SynthPoseConfig(frames_per_sequence=20, sequences_per_action=1)
    records = synthpose.generate("train", config=cfg, subjects=["S1"], actions=["Walking"])
    norm = method.data_stats(device.DeviceDataset.from_records(records).host)
    path.mkdir(parents=True)
    (path / "config.json").write_text(config.to_json_best_effort(indent=2, sort_keys=True))
    ckpt = ckpt_lib.Checkpointer(path)
    ckpt.save(1, method.create_state(jax.random.key(0), norm), {"method": "baseline"})
    ckpt.close()
    return path


def command(module, *args, devices=1):
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    env.pop("POSEJAX_DEBUG", None)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    cmd = [sys.executable, "-m", module, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)


def test_every_command_reports_bad_input_in_one_line(workdir, tmp_path):
    bad_json = tmp_path / "bad_json"
    bad_json.mkdir()
    (bad_json / "config.json").write_text("{not json")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(workdir, corrupt)
    data = [p for p in (corrupt / "checkpoints" / "1" / "state").rglob("*") if p.parent.name == "d"]
    victim = max(data, key=lambda p: p.stat().st_size)
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, other bytes
    victim.write_bytes(bytes(raw))
    locked = tmp_path / "locked"
    train = "posejax.train"
    evaluate = "posejax.evaluate"
    cases = {
        "unknown variant": ((train, f"{SMOKE[:-6]}:huge", "--workdir", tmp_path / "a"),
                            "unknown variant 'huge'"),
        "unknown config key": ((train, SMOKE, "--workdir", tmp_path / "b",
                                "--config.train.nonexistent=3"), "does not have"),
        "bad config value": ((train, SMOKE, "--workdir", tmp_path / "c",
                              "--config.train.batch_size=abc"), "invalid literal"),
        "missing config file": ((train, "--config=configs/nope.py", "--workdir", tmp_path / "d"),
                                "No such file"),
        "unknown method": ((train, SMOKE, "--workdir", tmp_path / "e", "--config.method=nope"),
                           "unknown method 'nope'"),
        "unknown data source": ((train, SMOKE, "--workdir", tmp_path / "f",
                                 "--config.data.source=imagenet"), "unknown data.source"),
        "source without its folder": ((train, SMOKE, "--workdir", tmp_path / "g",
                                       "--config.data.source=h36m"), "needs data.h36m.dir"),
        "batch the mesh does not divide": ((train, SMOKE, "--workdir", tmp_path / "h",
                                            "--config.train.batch_size=30"), "does not divide"),
        "non-finite metrics": ((train, SMOKE, "--workdir", tmp_path / "i",
                                "--config.optim.lr=1e38"), "non-finite"),
        "workdir held by a live run": ((train, SMOKE, "--workdir", locked), "in use by another"),
        "cluster flags without --distributed": ((train, SMOKE, "--workdir", tmp_path / "j",
                                                 "--num_processes=2"), "need --distributed"),
        "no such workdir": ((evaluate, "--workdir", tmp_path / "nope"), "config.json not found"),
        "config.json not JSON": ((evaluate, "--workdir", bad_json), "is not valid JSON"),
        "no such step": ((evaluate, "--workdir", workdir, "--step=7"), "no step 7"),
        "corrupt checkpoint": ((evaluate, "--workdir", corrupt), "fails its checksum"),
        "unknown aggregate": ((evaluate, "--workdir", workdir, "--aggregates=bogus"),
                              "unknown aggregate"),
        "unsupported missing joints": ((evaluate, "--workdir", workdir, "--missing_joints=3"),
                                       "missing_joints=3"),
        "evaluate: an architecture override": ((evaluate, "--workdir", workdir,
                                                 "--set", "model.width=8"), "belongs to the"),
        "aggregate alias, no workdir": (("posejax.aggregate", "--workdir", tmp_path / "nope"),
                                        "config.json not found"),
        "tfds_io without a command": (("posejax.data.tfds_io",), "usage: python -m"),
        "tfds_io: no manual files": (("posejax.data.tfds_io", "build", "cmu_mocap",
                                      f"--data_dir={tmp_path / 'tfds'}",
                                      f"--manual_dir={tmp_path / 'empty'}"), "error"),
        "gallery: bad seed": (("posejax.data.gallery", "--out", tmp_path / "g", "--seed=-1"),
                              "seed must be a non-negative integer"),
        "gallery: --out is a file": (("posejax.data.gallery", "--out", bad_json / "config.json"),
                                     "is a file; expected a folder"),
    }  # fmt: skip
    (tmp_path / "empty").mkdir()
    with lock.WorkdirLock(locked):  # held by this (live) test process
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = {
                name: pool.submit(command, *args, devices=4 if "mesh" in name else 1)
                for name, (args, _) in cases.items()
            }
            results = {name: f.result() for name, f in futures.items()}
    failures = []
    for name, (_, fragment) in cases.items():
        proc = results[name]
        err = [line for line in proc.stderr.splitlines() if line.strip()]
        last = err[-1] if err else ""
        if not (proc.returncode == 2 and last.startswith("error: ") and fragment in last):
            failures.append(f"{name}: status {proc.returncode}, last line {last!r}")
        elif "Traceback" in proc.stderr:
            failures.append(f"{name}: a traceback was printed")
    assert not failures, json.dumps(failures, indent=1)
    assert len(cases) >= 20
    assert np.all([r.returncode == 2 for r in results.values()])
