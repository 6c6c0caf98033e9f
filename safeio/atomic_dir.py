"""Replace an output folder as a whole or not at all (the report folder of `ibs-mprof run`).

The new contents are built in a hidden folder beside the target, on the same file system, and
swapped in: on Linux in one atomic RENAME_EXCHANGE, elsewhere by two renames whose gap a
later run repairs. Only a folder that `safeio.owned` proves ours is ever replaced, and what
the swap pushes out is removed file by file as its marker lists them, so even a file someone
slipped in after the check survives. Folders left by killed runs are cleaned by the next one
when their marker proves them ours.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from safeio.killpoints import kill_point
from safeio.owned import (
    Manifest,
    check_output_path,
    clean_stale,
    folder_files,
    fresh_dir,
    locked,
    remove_owned,
    write_manifest,
)


def replace_dir(out_dir: Path, kind: str, fill: Callable[[Path], None],
                option: str = "--out", inputs: Sequence[Path] = ()) -> Path:
    """Call fill(folder) on a fresh hidden folder beside out_dir, mark it as a folder of this
    kind listing every file fill wrote, then swap it in; return the folder written.

    out_dir is checked (`check_output_path`) before fill runs and again, under a lock on its
    parent, just before the swap; any failure removes the hidden folder and leaves an old
    out_dir as it was.
    """
    out_dir = check_output_path(option, str(out_dir), kind, inputs)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with locked(out_dir.parent):
        clean_stale(out_dir, kind)
        tmp = fresh_dir(out_dir.parent, f".{out_dir.name}.tmp-")
        try:
            fill(tmp)
            write_manifest(tmp, Manifest(kind, folder_files(tmp)))
            kill_point("run-temp-written")
            out_dir = check_output_path(option, str(out_dir), kind, inputs)
            swap_in(tmp, out_dir)
        except BaseException:
            remove_owned(tmp)
            raise
    return out_dir


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
    """Put new at out_dir and remove what the old out_dir held, if there was one.

    With RENAME_EXCHANGE the old and the new folder trade places in one step: out_dir is the
    old or the new folder at every instant. Elsewhere the old folder is renamed onto a fresh
    empty backup folder (POSIX rename(2) replaces an empty directory: no name race), then new
    onto out_dir; between the two renames out_dir is briefly absent, never partial, and a
    failure restores it (a kill there is repaired by the next run, see `clean_stale`).
    The old folder pushed out is removed as `remove_owned` allows: a file it does not list
    stays, with its folder, and a line on stderr says where.
    """
    if not out_dir.exists():
        os.replace(new, out_dir)
        return
    if exchange(new, out_dir):
        kill_point("run-swapped")
        _drop_old(new)  # now holds the old folder
        return
    backup = fresh_dir(out_dir.parent, f".{out_dir.name}.old-", mark=False)
    try:
        os.replace(out_dir, backup)
    except BaseException:
        remove_owned(backup)
        raise
    kill_point("run-between-renames")
    try:
        os.replace(new, out_dir)
    except BaseException:
        os.replace(backup, out_dir)
        raise
    kill_point("run-swapped")
    _drop_old(backup)


def _drop_old(folder: Path) -> None:
    if not remove_owned(folder):
        print(f"ibs-mprof: warning: {folder} kept: it holds files ibs-mprof did not write",
              file=sys.stderr)
