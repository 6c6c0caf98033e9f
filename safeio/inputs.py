"""Open a user's input file for reading, refusing anything that is not a regular file.

A FIFO blocks `open()` until a writer appears and a device may never end (or act on being
opened: a tape rewinds, a watchdog arms), so an input named by a user (scenario, topology,
spec file, lackey trace, replay CSV) is checked with stat() before it is opened, and opened
with O_NONBLOCK so that a FIFO swapped in between the two cannot block either; the opened
descriptor is checked again with fstat(). What is refused raises `NotRegularFile`, an OSError
whose `strerror` says what the path is, so callers' existing `except OSError` report it.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


class NotRegularFile(OSError):
    """The input exists but is not a regular file (directory, FIFO, device, socket)."""


def kind_of(mode: int) -> str | None:
    """What a stat mode says the file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refuse(path: str | os.PathLike[str], mode: int) -> None:
    kind = kind_of(mode)
    if kind is not None:
        code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
        raise NotRegularFile(code, f"is {kind}, not a regular file", os.fspath(path))


def open_input(path: str | os.PathLike[str]) -> BinaryIO:
    """`path` opened for binary reading; NotRegularFile (an OSError) unless it is a regular
    file, other OSErrors (missing, no permission) as open() raises them."""
    _refuse(path, os.stat(path).st_mode)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        _refuse(path, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)  # a regular file: reads behave as usual
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def input_size(path: str | os.PathLike[str]) -> int:
    """Size in bytes of a regular input file (NotRegularFile / OSError as open_input)."""
    info = os.stat(path)
    _refuse(path, info.st_mode)
    return info.st_size


def reason(exc: OSError) -> str:
    """The part of an OSError worth showing after the path: strerror, else the message."""
    return exc.strerror or str(exc)

