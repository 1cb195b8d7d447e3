"""One writer per workdir: ``with WorkdirLock(workdir): ...``.

``workdir/.lock`` holds the holder's host, PID and start time (JSON) and the holder keeps
an exclusive ``fcntl.flock`` on it. The kernel drops a flock when its process dies, even by
SIGKILL, so a lock file left behind is stale exactly when nobody holds the flock. The
recorded PID is checked as well (alive, and started when the file says), which covers
filesystems where flock is a no-op and a PID reused by another process:

* held (flock busy, or the recorded process on this host is alive): ``WorkdirLockedError``
  naming host, PID and start time;
* left by a dead process on this host: taken over, with a warning;
* left by another host, flock free: ``WorkdirLockedError`` (a process there cannot be
  checked from here); the message says which file to remove once that run is gone.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import logging
import os
import pathlib
import socket

log = logging.getLogger("posejax")

LOCK_NAME = ".lock"
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}


class WorkdirLockedError(RuntimeError):
    """Another process holds (or may hold) the workdir."""


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux ``/proc``; None elsewhere)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) is in parentheses and may hold spaces.
    return int(stat.rsplit(")", 1)[1].split()[19])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def describe(holder: dict) -> str:
    return (
        f"host {holder.get('host', '?')}, PID {holder.get('pid', '?')}, "
        f"started {holder.get('started', '?')}"
    )


class WorkdirLock:
    """Exclusive right to write ``workdir`` (checkpoints, metrics) while the block runs."""

    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir)
        self.path = self.workdir / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> WorkdirLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this WorkdirLock")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                flocked = self._flock(fd)
                # The holder unlinks the file on release: the flock must be on the file
                # that is at the path now, else retry on the new one.
                if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                    raise FileNotFoundError
                self._take(fd, flocked)
            except FileNotFoundError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            return
        raise WorkdirLockedError(f"{self.path} keeps changing under us: another process is racing")

    def _flock(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkdirLockedError(self._held_message(_read(fd))) from None
        except OSError as e:
            if e.errno not in _NO_FLOCK:
                raise
            return False  # no flock on this filesystem: the recorded PID decides alone
        return True

    def _take(self, fd: int, flocked: bool) -> None:
        holder = _read(fd)
        if holder:
            if not _is_stale(holder):
                raise WorkdirLockedError(self._held_message(holder))
            log.warning(
                "taking over the stale lock %s of a process that is gone (%s)",
                self.path,
                describe(holder),
            )
        elif not flocked and os.fstat(fd).st_size:
            raise WorkdirLockedError(f"{self.path} is unreadable; remove it if no run uses it")
        me = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": _started_iso(),
            "start_ticks": process_start_ticks(os.getpid()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        os.fsync(fd)

    def _held_message(self, holder: dict) -> str:
        who = describe(holder) if holder else "holder unknown"
        if holder and holder.get("host") != socket.gethostname():
            return (
                f"workdir {self.workdir} is locked by a process on another host ({who}); "
                f"it cannot be checked from here. If that run is gone, remove {self.path}."
            )
        return (
            f"workdir {self.workdir} is in use by another process ({who}); "
            f"wait for it to finish or stop it, or use another --workdir."
        )

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still holding the flock (see ``acquire``)
        os.close(self._fd)
        self._fd = None


def _read(fd: int) -> dict:
    raw = os.pread(fd, 4096, 0)
    try:
        holder = json.loads(raw)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _is_stale(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return False  # cannot check a process on another host
    pid = holder.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return True
    ticks = holder.get("start_ticks")
    return ticks is not None and process_start_ticks(pid) not in (None, ticks)


def _started_iso() -> str:
    ticks = process_start_ticks(os.getpid())
    try:
        btime = next(
            int(line.split()[1])
            for line in pathlib.Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        when = btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, TypeError, ValueError):
        when = datetime.datetime.now().timestamp()
    return datetime.datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")
