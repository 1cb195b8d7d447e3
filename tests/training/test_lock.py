"""One writer per workdir: a live holder (another process) is refused with its host, PID and
start time; a lock left by a dead process is taken over with a warning."""

import json
import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys

import pytest

from posejax.training import lock as lock_lib

REPO = pathlib.Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from posejax.training.lock import WorkdirLock
with WorkdirLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def dead_pid():
    """A PID that no process has (a child that has exited and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    pid = int(proc.stdout)
    assert not lock_lib.pid_alive(pid)
    return pid


def test_acquire_writes_holder_and_release_removes(tmp_path):
    with lock_lib.WorkdirLock(tmp_path / "wd") as lk:
        holder = json.loads(lk.path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["started"][:2] == "20"
        with pytest.raises(lock_lib.WorkdirLockedError, match=f"PID {os.getpid()}"):
            lock_lib.WorkdirLock(tmp_path / "wd").acquire()  # a second acquirer, same process
    assert not (tmp_path / "wd" / ".lock").exists()
    with lock_lib.WorkdirLock(tmp_path / "wd"):  # free again
        pass


def test_live_holder_in_another_process_is_named(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(lock_lib.WorkdirLockedError) as e:
            with lock_lib.WorkdirLock(tmp_path):
                pass
        msg = str(e.value)
        assert f"PID {proc.pid}" in msg and socket.gethostname() in msg and "started 20" in msg
        assert "in use by another process" in msg
        # SIGKILL: no release ran, the file stays, but the kernel dropped the flock.
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert (tmp_path / ".lock").exists()
    with lock_lib.WorkdirLock(tmp_path) as lk:
        assert json.loads(lk.path.read_text())["pid"] == os.getpid()


def test_stale_lock_of_a_dead_pid_is_taken_over(tmp_path, caplog):
    pid = dead_pid()
    stale = {"host": socket.gethostname(), "pid": pid, "started": "2026-01-01T00:00:00+00:00"}
    (tmp_path / ".lock").write_text(json.dumps(stale))
    with caplog.at_level(logging.WARNING, logger="posejax"):
        with lock_lib.WorkdirLock(tmp_path) as lk:
            assert json.loads(lk.path.read_text())["pid"] == os.getpid()
    assert "taking over the stale lock" in caplog.text and f"PID {pid}" in caplog.text


def test_reused_pid_with_another_start_time_is_stale(tmp_path):
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": "?", "start_ticks": 1}
    (tmp_path / ".lock").write_text(json.dumps(me))  # PID alive, but started at another time
    with lock_lib.WorkdirLock(tmp_path):
        pass


def test_recorded_live_process_or_other_host_is_refused(tmp_path):
    # A file naming a live process (as on a filesystem without flock): refused.
    parent = os.getppid()
    live = {"host": socket.gethostname(), "pid": parent, "started": "then"}
    (tmp_path / ".lock").write_text(json.dumps(live))
    with pytest.raises(lock_lib.WorkdirLockedError, match=f"PID {parent}, started then"):
        lock_lib.WorkdirLock(tmp_path).acquire()
    other = {"host": "elsewhere-7", "pid": 12, "started": "then"}
    (tmp_path / ".lock").write_text(json.dumps(other))
    with pytest.raises(lock_lib.WorkdirLockedError, match="another host.*elsewhere-7.*remove"):
        lock_lib.WorkdirLock(tmp_path).acquire()
