"""Put rendered files on disk atomically, and compare them with what is there (`--check`).

The output folder is ours only when its ownership marker (`safeio.owned.MARKER`, kind
"generated") says so; the marker lists every file gen wrote. gen writes into an absent or
empty folder or one of its own, replaces only files its marker lists, deletes only listed
files no spec renders any more, and refuses a folder or a file it did not write. The marker
is part of the rendered output (its bytes follow from the files), so `--check` verifies it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from safeio.errors import InputError
from safeio.killpoints import kill_point
from safeio.owned import (
    MARKER,
    Manifest,
    check_output_path,
    clean_stale_temps,
    fresh_dir,
    locked,
    read_manifest,
    remove_owned,
    write_manifest,
)

GENERATED_KIND = "generated"
_HASH_LINE = re.compile(rb"spec/\S+ sha256 [0-9a-f]{64}")
_TEMP_PREFIX = ".gen-tmp-"


def manifest_for(files: dict[str, bytes]) -> Manifest:
    """The ownership marker that lists the rendered files."""
    return Manifest(GENERATED_KIND,
                    {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()})


def with_marker(files: dict[str, bytes]) -> dict[str, bytes]:
    """The rendered files plus the ownership marker that lists them."""
    return {**files, MARKER: manifest_for(files).to_bytes()}


def check_out(out_dir: Path, option: str = "--out") -> Path:
    """The absolute output folder, or InputError (one line) when gen may not write there."""
    return check_output_path(option, str(out_dir), GENERATED_KIND, whole=False)


def _write_temp(folder: Path, target: Path, data: bytes) -> Path:
    """Write data to a file in the temporary folder; return its path.

    The file gets the mode target has (or, for a new file, what the umask gives), since the
    rename keeps it.
    """
    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    tmp = folder / target.name
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as handle:
        if mode is not None:
            os.chmod(tmp, mode)
        handle.write(data[:len(data) // 2])
        handle.flush()
        kill_point("gen-temp-partial")
        handle.write(data[len(data) // 2:])
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def _refuse_foreign(out_dir: Path, files: dict[str, bytes], owned: set[str]) -> None:
    """InputError unless every file gen would write is absent or listed in its marker."""
    for rel in sorted(files):
        target = out_dir / rel
        if os.path.lexists(target) and (rel not in owned or target.is_symlink()
                                        or not target.is_file()):
            raise InputError(f"--out {str(out_dir)!r}: {rel} exists and ibs-mprof did not "
                             "write it; move it away or name another folder")


def write_all(out_dir: Path, files: dict[str, bytes]) -> list[str]:
    """Write every changed file (temp files first, renames last); return the changed paths.

    Each file is replaced atomically (old or new bytes, never a mix); the set is not: a run
    killed between two renames leaves some files new and some old, which `--check` reports
    as stale and the next run completes. Before the renames the marker lists the old and the
    new files together, so at every instant it covers all that gen wrote. A lock on the
    folder makes two gens at once take turns; temporary folders that killed runs left are
    removed when their marker proves them ours.
    """
    out_dir = check_out(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    new_manifest = manifest_for(files)
    with locked(out_dir):
        out_dir = check_out(out_dir)  # again, under the lock
        old = read_manifest(out_dir)
        owned = set(old.files) if old is not None else set()
        _refuse_foreign(out_dir, files, owned)
        clean_stale_temps(out_dir, _TEMP_PREFIX)
        changed = [rel for rel in sorted(files)
                   if not ((out_dir / rel).is_file() and (out_dir / rel).read_bytes()
                           == files[rel])]
        gone = sorted(owned - set(files))
        if not changed and not gone and old == new_manifest:
            return []
        tmp_dir = fresh_dir(out_dir, _TEMP_PREFIX)
        try:
            temps = [(_write_temp(tmp_dir, out_dir / rel, files[rel]), out_dir / rel)
                     for rel in changed]
            kill_point("gen-temps-written")
            both = dict(old.files) if old is not None else {}
            both.update(new_manifest.files)
            write_manifest(out_dir, Manifest(GENERATED_KIND, both))
            for index, (tmp, target) in enumerate(temps):
                os.replace(tmp, target)
                if index == 0:
                    kill_point("gen-between-renames")
        finally:
            remove_owned(tmp_dir)
        kill_point("gen-renamed")
        for rel in gone:
            (out_dir / rel).unlink(missing_ok=True)
        write_manifest(out_dir, new_manifest)
    return changed


def check(out_dir: Path, files: dict[str, bytes]) -> list[str]:
    """Problems, one line each: missing, stale (spec changed), hand-edited, or left over."""
    problems: list[str] = []
    wanted = with_marker(files)
    for rel, data in sorted(wanted.items()):
        target = out_dir / rel
        if not target.is_file():
            problems.append(f"missing: {target}")
            continue
        have = target.read_bytes()
        if have == data:
            continue
        if rel == MARKER:
            problems.append(f"stale: {target} (does not list what spec/ renders)")
        elif _HASH_LINE.findall(have) != _HASH_LINE.findall(data):
            problems.append(f"stale: {target} (spec/ changed since it was generated)")
        else:
            problems.append(f"hand-edited: {target} (differs from what spec/ renders)")
    old = read_manifest(out_dir)
    for rel in sorted(set(old.files) - set(files)) if old is not None else []:
        if (out_dir / rel).exists():
            problems.append(f"left over: {out_dir / rel} (no spec renders it any more)")
    return problems
