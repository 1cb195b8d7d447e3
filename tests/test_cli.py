"""``posejax.cli``: expected failures as one ``error:`` line with status 2, tracebacks for
bugs and on request; ``python -m posejax.predict`` with bad inputs end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from posejax import cli
from posejax.training import checkpoint as ckpt_lib
from tests.helpers import REPO, make_workdir


def call(main, argv, capsys, monkeypatch, env_debug=None):
    """``cli.run(main, argv)`` -> (exit status or None, stderr)."""
    if env_debug is None:
        monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    else:
        monkeypatch.setenv(cli.DEBUG_ENV, env_debug)
    try:
        cli.run(main, argv)
        status = None
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().err


def failing(exc):
    def main(argv):
        assert cli.DEBUG_FLAG not in argv
        raise exc

    return main


@pytest.mark.parametrize(
    "exc, line",
    [
        (ValueError("expected [B, 17, 2], found [3, 16, 2]"), "expected [B, 17, 2], found"),
        (KeyError("unknown method 'nope'; valid: ['baseline']"), "unknown method 'nope'; valid"),
        (FileNotFoundError("/x/config.json not found"), "/x/config.json not found"),
        (json.JSONDecodeError("Expecting value", "{", 1), "Expecting value: line 1 column 2"),
        (
            ckpt_lib.CheckpointError("checkpoint c/2 does not match:\n  a: b\n  c: d"),
            "match: a: b; c: d",
        ),
        (FloatingPointError("non-finite training metrics at step 3"), "non-finite"),
        (cli.UsageError("--out is required"), "--out is required"),
    ],
)
def test_expected_failures_are_one_line_with_status_2(exc, line, capsys, monkeypatch):
    status, err = call(failing(exc), ["--x", "1"], capsys, monkeypatch)
    assert status == cli.EXIT_STATUS
    assert err.startswith("error: ") and err.count("\n") == 1 and line in err
    assert "Traceback" not in err


def test_debug_flag_or_env_shows_the_traceback(capsys, monkeypatch):
    with pytest.raises(ValueError, match="bad value"):
        call(failing(ValueError("bad value")), ["--debug"], capsys, monkeypatch)
    with pytest.raises(ValueError, match="bad value"):
        call(failing(ValueError("bad value")), [], capsys, monkeypatch, env_debug="1")
    status, _ = call(failing(ValueError("v")), [], capsys, monkeypatch, env_debug="0")
    assert status == 2


def test_unexpected_errors_keep_their_traceback_and_results_pass_through(capsys, monkeypatch):
    with pytest.raises(RuntimeError, match="a bug"):
        call(failing(RuntimeError("a bug")), [], capsys, monkeypatch)
    assert cli.run(lambda argv: argv, ["a", "--debug", "b"]) == ["a", "b"]
    assert cli.run(lambda argv: argv, ["prog", "a"], with_program=True) == ["prog", "a"]


def test_one_line():
    assert cli.one_line(KeyError("k")) == "k"
    assert cli.one_line(ValueError("a:\n  x\n  y\nz")) == "a: x; y; z"
    assert cli.one_line(ValueError()) == "ValueError"


# ``python -m posejax.predict`` in a subprocess: what a user sees.


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A baseline workdir as the trainer writes it (config.json + one checkpoint)."""
    return make_workdir(tmp_path_factory.mktemp("cli") / "wd", "baseline")[0]


def predict(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    env.pop(cli.DEBUG_ENV, None)
    cmd = [sys.executable, "-m", "posejax.predict", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=REPO)


def assert_one_line_error(proc, *fragments):
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert err and err[-1].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in err[-1], err[-1]


def test_predict_bad_inputs_one_line_each(workdir, tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    wrong_shape = tmp_path / "wrong.npy"
    np.save(wrong_shape, np.zeros((4, 16, 2), np.float32))
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((4, 17, 2), np.float32) + 500.0)
    empty_wd = tmp_path / "empty_wd"
    empty_wd.mkdir()
    (empty_wd / "config.json").write_text((workdir / "config.json").read_text())
    out = ["--out", tmp_path / "out", "--png", "none"]
    cases = [
        ([workdir, tmp_path / "nope.json", "coco"], ["nope.json does not exist"]),
        ([workdir, bad_json, "coco"], ["bad.json is not valid JSON"]),
        ([workdir, wrong_shape, "npy"], ["wrong.npy: expected", "found shape (4, 16, 2)"]),
        ([tmp_path / "no_wd", good, "npy"], ["no_wd does not exist"]),
        ([empty_wd, good, "npy"], ["no checkpoint in", "empty_wd/checkpoints"]),
    ]
    for (wd, kp, fmt), fragments in cases:
        proc = predict("--workdir", wd, "--keypoints", kp, "--format", fmt, *out)
        assert_one_line_error(proc, *fragments)
    # The same bad input with --debug: the traceback.
    traced = predict(
        "--workdir", workdir, "--keypoints", bad_json, "--format", "coco", *out, "--debug"
    )
    assert traced.returncode == 1 and "Traceback" in traced.stderr


def test_predict_corrupt_checkpoint_names_the_step(workdir, tmp_path):
    import shutil

    wd = tmp_path / "wd"
    shutil.copytree(workdir, wd)
    data = [p for p in (wd / "checkpoints" / "1" / "state").rglob("*") if p.parent.name == "d"]
    victim = max(data, key=lambda p: p.stat().st_size)
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((2, 17, 2), np.float32) + 500)
    proc = predict("--workdir", wd, "--keypoints", good, "--format", "npy", "--out", tmp_path / "o")
    assert "Steps that verify: none" in proc.stderr
    assert_one_line_error(proc, "checkpoints/1 is unreadable or corrupt", "fails its checksum")
