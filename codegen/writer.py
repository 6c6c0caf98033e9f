"""Put rendered files on disk atomically, and compare them with what is there (`--check`)."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from codegen.render import GENERATOR
from safeio.killpoints import kill_point

_HASH_LINE = re.compile(rb"spec/\S+ sha256 [0-9a-f]{64}")
_TEMP_PREFIX = ".gen-"



def _write_temp(path: Path, data: bytes) -> str:
    """Write data to a fresh temp file beside path; return the temp file's name.

    The temp file gets the mode path has (or, for a new file, what the umask gives), since the
    rename keeps it: tempfile.mkstemp's 0600 would leave generated files readable by their
    owner only.
    """
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    for _ in range(100):
        tmp = str(path.parent / f"{_TEMP_PREFIX}{path.name}.{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(f"no free temporary name {_TEMP_PREFIX}{path.name}.* in "
                              f"{path.parent}")
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.chmod(tmp, mode)
            handle.write(data[:len(data) // 2])
            handle.flush()
            kill_point("gen-temp-partial")
            handle.write(data[len(data) // 2:])
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_all(out_dir: Path, files: dict[str, bytes]) -> list[str]:
    """Write every changed file (temp files first, renames last); return the changed paths.

    Each file is replaced atomically (old or new bytes, never a mix); the set is not: a run
    killed between two renames leaves some files new and some old, which `--check` reports
    as stale and the next run completes. Temp files (`.gen-*`) a killed run left behind are
    removed first.
    """
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
        kill_point("gen-temps-written")
        for index, (tmp, target) in enumerate(pending):
            os.replace(tmp, target)
            if index == 0:
                kill_point("gen-between-renames")
    finally:
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)
    kill_point("gen-renamed")
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
