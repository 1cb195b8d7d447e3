"""Checkpoint integrity: a manifest of every step directory's files, checked on restore.

``<step>/posejax_manifest.json`` lists each file of the step directory (relative path,
size in bytes, CRC-32 of the bytes). ``Checkpointer`` writes it from Orbax's
post-finalization callback, i.e. into the temporary directory after every item is
written and before Orbax's commit (``commit_success.txt`` and the atomic rename), so a
committed step always carries its manifest and a step without one was never completed.
The step's ``meta`` item records ``"manifest": true`` so that such a step is told apart
from a checkpoint written before manifests existed (which loads, with a note).

CRC-32 (zlib) rather than a cryptographic hash: it guards against torn writes, truncation
and bit rot, not against an adversary, and it is fast: 13 ms for an 18 MB checkpoint whose
save and commit take 150-210 ms (2-core CPU; BLAKE2b is 7x slower than CRC-32).

This module imports no Orbax or JAX; ``posejax.cli`` imports ``CheckpointError`` from here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import re
import time
import zlib

log = logging.getLogger("posejax")

MANIFEST = "posejax_manifest.json"
META_FLAG = "manifest"  # key of the step's ``meta`` item: a manifest was written
MANIFEST_VERSION = 1
_CHUNK = 4 << 20
TMP_MARK = ".orbax-checkpoint-tmp"  # Orbax's temporary step directories: <step>.<mark>-<ts>
SET_ASIDE = re.compile(r"^\d+\.(corrupt|incomplete)-")
# Orbax's step metadata (commit time, metrics) is rewritten by the manager after the
# commit, so it cannot be in a manifest written before it.
UNLISTED = frozenset({MANIFEST, MANIFEST + ".tmp", "_CHECKPOINT_METADATA"})


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not match the model."""


def file_crc32(path) -> str:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def _files(step_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted(
        p
        for p in step_dir.rglob("*")
        if p.is_file() and p.relative_to(step_dir).as_posix() not in UNLISTED
    )


def write_manifest(step_dir) -> dict:
    """Writes ``step_dir/posejax_manifest.json`` (atomically) and returns it."""
    step_dir = pathlib.Path(step_dir)
    files = {
        p.relative_to(step_dir).as_posix(): {"size": p.stat().st_size, "crc32": file_crc32(p)}
        for p in _files(step_dir)
    }
    manifest = {"version": MANIFEST_VERSION, "checksum": "crc32", "files": files}
    tmp = step_dir / (MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, step_dir / MANIFEST)
    return manifest


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The result of checking one step directory; ``problems`` empty = usable."""

    path: pathlib.Path
    problems: tuple[str, ...] = ()
    has_manifest: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self, limit: int = 3) -> str:
        text = "; ".join(self.problems[:limit])
        more = len(self.problems) - limit
        return text + (f"; and {more} more" if more > 0 else "")


def _meta_promises_manifest(step_dir: pathlib.Path) -> bool | None:
    """Whether the step's ``meta`` item says a manifest was written (None: unreadable)."""
    try:
        meta = json.loads((step_dir / "meta" / "metadata").read_text())
    except (OSError, ValueError):
        return None
    return bool(meta.get(META_FLAG)) if isinstance(meta, dict) else None


def verify(step_dir, *, checksums: bool = True) -> Verdict:
    """Checks ``step_dir`` against its manifest (sizes always, CRC-32 if ``checksums``).

    A step without a manifest is usable (``has_manifest=False``) only when its metadata
    does not promise one, i.e. it was written before manifests existed.
    """
    step_dir = pathlib.Path(step_dir)
    if not step_dir.is_dir():
        return Verdict(step_dir, ("the step directory does not exist",))
    path = step_dir / MANIFEST
    if not path.exists():
        promised = _meta_promises_manifest(step_dir)
        if promised is None:
            return Verdict(step_dir, ("no manifest and no readable meta/metadata",), False)
        if promised:
            return Verdict(
                step_dir, (f"no {MANIFEST} although its metadata promises one (incomplete)",), False
            )
        return Verdict(step_dir, (), has_manifest=False)
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return Verdict(step_dir, (f"{MANIFEST} is unreadable ({type(e).__name__}: {e})",))
    problems = []
    for rel, want in sorted(files.items()):
        p = step_dir / rel
        if not p.is_file():
            problems.append(f"{rel} is missing")
            continue
        size = p.stat().st_size
        if size != want["size"]:
            problems.append(f"{rel} has {size} bytes, the manifest says {want['size']}")
        elif checksums and file_crc32(p) != want["crc32"]:
            problems.append(
                f"{rel} fails its checksum (CRC-32 {file_crc32(p)}, expected {want['crc32']})"
            )
    return Verdict(step_dir, tuple(problems))


def temporary_dirs(directory) -> list[pathlib.Path]:
    """Orbax's leftover ``<step>.orbax-checkpoint-tmp-<ts>`` directories (saves that died)."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if TMP_MARK in p.name and not SET_ASIDE.match(p.name)
    )


def step_of(path: pathlib.Path) -> int:
    return int(re.match(r"\d+", path.name).group())


def set_aside(path, kind: str) -> pathlib.Path:
    """Renames ``checkpoints/<step>[...]`` to ``checkpoints/<step>.<kind>-<time>`` (outside
    Orbax's step-name pattern, so no manager lists it) and returns the new path."""
    path = pathlib.Path(path)
    base = f"{step_of(path)}.{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    target, n = path.with_name(base), 1
    while target.exists():
        target, n = path.with_name(f"{base}-{n}"), n + 1
    os.rename(path, target)
    return target


def newest_temporary_dir(directory, step: int) -> pathlib.Path | None:
    """The temporary directory Orbax is finalising for ``step`` (largest timestamp)."""
    candidates = [p for p in temporary_dirs(directory) if step_of(p) == step]

    def stamp(p):
        digits = re.findall(r"\d+", p.name.split(TMP_MARK, 1)[1])
        return int(digits[0]) if digits else 0

    return max(candidates, key=stamp, default=None)
