"""Replace a folder as a whole or not at all (the report folder of `ibs-mprof run`).

The new contents are built in a hidden folder beside the target, on the same file system, and
swapped in: on Linux in one atomic RENAME_EXCHANGE, elsewhere by two renames whose gap a
later run repairs. Folders left by killed runs are cleaned up by the next one.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from safeio.killpoints import kill_point


def replace_dir(out_dir: Path, fill: Callable[[Path], None]) -> None:
    """Call fill(folder) on a fresh hidden folder beside out_dir, then swap it in; any failure
    removes that folder and leaves an old out_dir as it was."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir)
    tmp = fresh_dir(out_dir.parent, f".{out_dir.name}.tmp-")
    try:
        fill(tmp)
        kill_point("run-temp-written")
        swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fresh_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder `<prefix><pid>-<random>` under parent (the pid tells a later run
    whether its owner still exists). Unlike tempfile.mkdtemp (mode 0700) it gets the user's
    umask, so the report folder swapped in has the permissions a mkdir would give."""
    for _ in range(100):
        candidate = parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name {prefix}* in {parent}")


def _owner_alive(name: str, prefix: str) -> bool:
    """Whether the process that made hidden folder `name` (`<prefix><pid>-<hex>`) still runs."""
    pid_text = name[len(prefix):].split("-", 1)[0]
    if not pid_text.isdigit():
        return False  # not one of ours with a pid: nobody is writing it
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: exists, another user's
        return True
    return True


def clean_stale(out_dir: Path) -> None:
    """Remove the hidden temporary and backup folders of killed runs for out_dir.

    A run killed between the two renames of the fallback swap leaves out_dir missing and the
    old report only in its backup folder: that folder is put back at out_dir first.
    """
    parent, name = out_dir.parent, out_dir.name
    for kind in ("old", "tmp"):
        prefix = f".{name}.{kind}-"
        for stale in sorted(parent.glob(f"{glob.escape(prefix)}*")):
            if not stale.is_dir() or _owner_alive(stale.name, prefix):
                continue
            if kind == "old" and not out_dir.exists():
                os.replace(stale, out_dir)
            else:
                shutil.rmtree(stale, ignore_errors=True)


def exchange(a: Path, b: Path) -> bool:
    """Swap the two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where
    that is not available (another OS, an old kernel or C library, a file system without it).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def swap_in(new: Path, out_dir: Path) -> None:
    """Put new at out_dir and remove the old out_dir, if there was one.

    With RENAME_EXCHANGE the old and the new folder trade places in one step: out_dir is the
    old or the new report at every instant. Elsewhere the old folder is renamed onto a fresh
    empty backup folder (POSIX rename(2) replaces an empty directory: no name race), then new
    onto out_dir; between the two renames out_dir is briefly absent, never partial, and a
    failure restores it (a kill there is repaired by the next run, see `clean_stale`).
    """
    if not out_dir.exists():
        os.replace(new, out_dir)
        return
    if exchange(new, out_dir):
        kill_point("run-swapped")
        shutil.rmtree(new, ignore_errors=True)  # now holds the old report
        return
    backup = fresh_dir(out_dir.parent, f".{out_dir.name}.old-")
    try:
        os.replace(out_dir, backup)
    except BaseException:
        backup.rmdir()
        raise
    kill_point("run-between-renames")
    try:
        os.replace(new, out_dir)
    except BaseException:
        os.replace(backup, out_dir)
        raise
    kill_point("run-swapped")
    shutil.rmtree(backup, ignore_errors=True)
