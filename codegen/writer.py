"""Put rendered files on disk atomically, and compare them with what is there (`--check`)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from codegen.render import GENERATOR

_HASH_LINE = re.compile(rb"spec/\S+ sha256 [0-9a-f]{64}")
_TEMP_PREFIX = ".gen-"


def _write_temp(path: Path, data: bytes) -> str:
    """Write data to a fresh temp file beside path; return the temp file's name."""
    fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_all(out_dir: Path, files: dict[str, bytes]) -> list[str]:
    """Write every changed file (temp files first, renames last); return the changed paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale_tmp in out_dir.glob(_TEMP_PREFIX + "*"):
        stale_tmp.unlink(missing_ok=True)
    pending: list[tuple[str, Path]] = []
    try:
        for rel, data in sorted(files.items()):
            target = out_dir / rel
            if target.exists() and target.read_bytes() == data:
                continue
            pending.append((_write_temp(target, data), target))
        for tmp, target in pending:
            os.replace(tmp, target)
    finally:
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)
    for rel in _ours_not_wanted(out_dir, files):
        (out_dir / rel).unlink()
    return [str(target.relative_to(out_dir)) for _, target in pending]


def _ours_not_wanted(out_dir: Path, files: dict[str, bytes]) -> list[str]:
    """Files in out_dir that carry our header but are no longer rendered."""
    extra = []
    for path in sorted(out_dir.iterdir()):
        if path.is_file() and path.name not in files and _is_ours(path):
            extra.append(path.name)
    return extra


def _is_ours(path: Path) -> bool:
    try:
        return GENERATOR.encode() in path.read_bytes()[:400]
    except OSError:
        return False


def check(out_dir: Path, files: dict[str, bytes]) -> list[str]:
    """Problems, one line each: missing, stale (spec changed), hand-edited, or left over."""
    problems: list[str] = []
    for rel, data in sorted(files.items()):
        target = out_dir / rel
        if not target.exists():
            problems.append(f"missing: {target}")
            continue
        have = target.read_bytes()
        if have == data:
            continue
        if _HASH_LINE.findall(have) != _HASH_LINE.findall(data):
            problems.append(f"stale: {target} (spec/ changed since it was generated)")
        else:
            problems.append(f"hand-edited: {target} (differs from what spec/ renders)")
    for rel in _ours_not_wanted(out_dir, files):
        problems.append(f"left over: {out_dir / rel} (no spec renders it any more)")
    return problems
