"""Where a TFDS build came from: the source record stored with a prepared dataset.

A record is a JSON dict with a ``kind`` and a ``fingerprint`` (16 hex digits of a
SHA-256):

* ``manual_dir``: ``folder`` (resolved absolute path) and ``files`` (``[name, bytes]``
  of the files the build reads, sorted); the fingerprint hashes the names and sizes
  only, so it takes one ``stat`` per file, and a byte-identical copy of a folder
  elsewhere has the same fingerprint.
* ``generator``: the generator's parameters (SynthPose's seed and config); the
  fingerprint hashes them.

``posejax.data.tfds_io`` writes the record as ``SOURCE_FILE`` into the version
directory, next to TFDS's ``dataset_info.json``, and compares it on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

SOURCE_FILE = "posejax_source.json"
_FINGERPRINT_HEX = 16


def fingerprint(payload) -> str:
    """16 hex digits of the SHA-256 of ``payload`` as canonical JSON."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_FINGERPRINT_HEX]


def folder_source(directory: str | os.PathLike, patterns: tuple[str, ...] = ("*",)) -> dict:
    """The record of the regular files in ``directory`` (not recursive) matching ``patterns``.

    A missing folder gives an empty ``files`` list (and still a fingerprint).
    """
    folder = pathlib.Path(os.fspath(directory)).expanduser().resolve()
    sizes = {}
    if folder.is_dir():
        for pattern in patterns:
            for path in folder.glob(pattern):
                if path.is_file():
                    sizes[path.name] = path.stat().st_size
    files = [[name, size] for name, size in sorted(sizes.items())]
    return {
        "kind": "manual_dir",
        "folder": str(folder),
        "files": files,
        "fingerprint": fingerprint(files),
    }


def generator_source(**params) -> dict:
    """The record of a generated dataset; ``params`` must be JSON-serialisable."""
    params = json.loads(json.dumps(params, default=str))  # tuples -> lists, as read back
    return {"kind": "generator", "params": params, "fingerprint": fingerprint(params)}


def same(found: dict | None, wanted: dict) -> bool:
    """Whether a recorded source (``None``: none recorded) is the ``wanted`` one."""
    return (
        found is not None
        and found.get("kind") == wanted["kind"]
        and found.get("fingerprint") == wanted["fingerprint"]
    )


def describe(source: dict | None) -> str:
    """One line naming a source, for logs and errors."""
    if source is None:
        return f"an unknown source (no {SOURCE_FILE}: built by an older posejax)"
    fp = source.get("fingerprint", "?")
    if source.get("kind") == "manual_dir":
        n = len(source.get("files", []))
        return f"folder {source.get('folder')} ({n} files, fingerprint {fp})"
    return f"generator {source.get('params')} (fingerprint {fp})"


def write(directory: str | os.PathLike, source: dict) -> None:
    path = pathlib.Path(os.fspath(directory)) / SOURCE_FILE
    path.write_text(json.dumps(source, indent=1, sort_keys=True) + "\n")


def read(directory: str | os.PathLike) -> dict | None:
    """The record in ``directory``, or ``None`` where there is none (or it is unreadable)."""
    path = pathlib.Path(os.fspath(directory)) / SOURCE_FILE
    try:
        source = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return source if isinstance(source, dict) else None
