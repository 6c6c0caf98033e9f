"""The sweep folder: each point's result kept as it finishes, found again by a rerun, and the
tables and plots replaced at the end; only ever what we can prove we wrote.

    OUT/.ibs-mprof-owner.json   kind "sweep": lists the tables and plots with their SHA-256
    OUT/points/<key>/           one folder per point, kind "sweep-point", written whole
                                (safeio.atomic_dir): point.json and, when it ran, report.json
    OUT/results.csv, results.parquet, plots/*.png

`<key>` is the first 32 hex digits of the point's key (points.py), so a rerun of any grid
finds every point computed before with the same scenario and tool. A folder is taken only
when it is absent, empty, or a sweep folder of ours in which every entry is proven ours (the
marker lists it with its bytes, or it is a whole point folder); anything else is refused as
`run --out` refuses. A lock on the folder keeps a second sweep out while one runs.

The tables and plots are built in a hidden temporary folder, then moved in one by one: the old
file removed, the marker updated, the new file renamed in. A crash at any step leaves each
file absent or listed with its bytes, so the next run takes the folder again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import InputError
from runtime.report import report_json
from runtime.sweep.task import Outcome
from safeio.atomic_dir import replace_dir
from safeio.killpoints import kill_point
from safeio.owned import (
    Manifest,
    check_output_path,
    clean_stale,
    clean_stale_temps,
    folder_files,
    fresh_dir,
    is_whole_folder_of,
    read_manifest,
    remove_owned,
    sha256_file,
    unlisted,
    write_manifest,
)

SWEEP_KIND = "sweep"
POINT_KIND = "sweep-point"
POINTS = "points"
POINT_FILE = "point.json"
REPORT_FILE = "report.json"
POINT_SCHEMA = "ibs-mprof sweep point 1"
OUTPUTS_TMP = ".outputs.tmp-"
NAME_DIGITS = 32
_LEFTOVER = re.compile(rf"\.([0-9a-f]{{{NAME_DIGITS}}})\.(?:tmp|old)-")
"""What atomic_dir leaves beside a point folder when killed (cleaned when proven ours)."""


@dataclass(frozen=True)
class Stored:
    """A point's stored result: its error, or None and its report in report.json."""

    folder: Path
    error: str | None

    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.folder / REPORT_FILE).read_bytes())
        return data


class Store:
    """An open sweep folder (locked while open)."""

    def __init__(self, root: Path, inputs: Sequence[Path]) -> None:
        self.root = root
        self.inputs = list(inputs)
        manifest = read_manifest(root)
        assert manifest is not None and manifest.kind == SWEEP_KIND
        self.manifest = manifest

    def folder(self, key: str) -> Path:
        return point_folder(self.root, key)

    def load(self, key: str) -> Stored | None:
        """The stored result of the point with this key, None when there is none."""
        return load(self.root, key)

    def save(self, outcome: Outcome, tool: str) -> Stored:
        """Write the point's folder as a whole (replacing an earlier failure of it)."""
        point = {"schema": POINT_SCHEMA, "key": outcome.key, "tool": tool,
                 "status": "failed" if outcome.error is not None else "ok",
                 "error": outcome.error}

        def fill(folder: Path) -> None:
            if outcome.report is not None:
                (folder / REPORT_FILE).write_text(report_json(outcome.report), encoding="utf-8")
            (folder / POINT_FILE).write_text(json.dumps(point, indent=1) + "\n",
                                             encoding="utf-8")

        (self.root / POINTS).mkdir(exist_ok=True)
        folder = replace_dir(self.folder(outcome.key), POINT_KIND, fill, inputs=self.inputs)
        kill_point("sweep-point-stored")
        return Stored(folder, outcome.error)

    @contextlib.contextmanager
    def outputs(self) -> Iterator[Path]:
        """A temporary folder to write the tables and plots into; on leaving the block
        normally they replace the folder's earlier ones (`publish`)."""
        tmp = fresh_dir(self.root, OUTPUTS_TMP)
        try:
            yield tmp
            self.publish(tmp)
        finally:
            remove_owned(tmp)

    def publish(self, tmp: Path) -> None:
        """Move every file of tmp to the same place in the sweep folder, and remove the
        earlier outputs it does not replace."""
        new = folder_files(tmp)
        for rel in sorted(set(self.manifest.files) - set(new)):
            self._remove(rel)
        for rel, digest in sorted(new.items()):
            self._remove(rel)
            self._list(rel, digest)
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, self.root / rel)
        for rel in sorted(set(self.manifest.files) - set(new)):
            self._unlist(rel)

    def _remove(self, rel: str) -> None:
        """Remove an output of ours about to be replaced: listed with these very bytes."""
        path = self.root / rel
        if not os.path.lexists(path):
            return
        if path.is_symlink() or not path.is_file() or \
                sha256_file(path) != self.manifest.files.get(rel):
            raise InputError(f"--out {self.root}: {rel} changed while the sweep ran; move it "
                             "away and rerun (the points are kept: none runs again)")
        path.unlink()
        if path.parent != self.root:
            with contextlib.suppress(OSError):  # an emptied plots/ folder goes too
                path.parent.rmdir()

    def _list(self, rel: str, digest: str) -> None:
        files = {**self.manifest.files, rel: digest}
        self.manifest = Manifest(SWEEP_KIND, files)
        write_manifest(self.root, self.manifest)

    def _unlist(self, rel: str) -> None:
        files = {k: v for k, v in self.manifest.files.items() if k != rel}
        self.manifest = Manifest(SWEEP_KIND, files)
        write_manifest(self.root, self.manifest)


def point_folder(root: Path, key: str) -> Path:
    return root / POINTS / key[:NAME_DIGITS]


def load(root: Path, key: str) -> Stored | None:
    """The stored result of the point with this key in the sweep folder root, None when
    there is none (read only: also a look before the folder is opened)."""
    folder = point_folder(root, key)
    try:
        data = json.loads((folder / POINT_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != POINT_SCHEMA or \
            data.get("key") != key:
        return None
    error = data.get("error")
    if error is None and not (folder / REPORT_FILE).is_file():
        return None
    return Stored(folder, error if isinstance(error, str) else None)


def check_out(text: str, inputs: Sequence[Path]) -> Path:
    """The sweep folder `--out TEXT`, checked before any work: absent, empty, or a sweep
    folder of ours (InputError otherwise)."""
    return check_output_path("--out", text, SWEEP_KIND, inputs, whole=False)


@contextlib.contextmanager
def open_store(text: str, inputs: Sequence[Path]) -> Iterator[Store]:
    """The sweep folder, created and marked if new, locked against a second sweep, cleaned
    of what killed runs left, and checked to hold nothing we did not write."""
    root = check_out(text, inputs)
    root.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    try:
        _lock(fd, text)
        root = check_out(str(root), inputs)  # again, under the lock
        if read_manifest(root) is None:  # absent or empty a moment ago: ours from now on
            write_manifest(root, Manifest(SWEEP_KIND))
        _clean_leftovers(root)
        _check_ours(root, text)
        yield Store(root, inputs)
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int, text: str) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Linux/macOS: no lock
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise InputError(f"--out {text!r}: another ibs-mprof sweep is writing this folder; "
                         "wait for it or name another folder") from None


def _clean_leftovers(root: Path) -> None:
    """Temporary folders of killed runs: the outputs' and the point folders' (only those
    whose marker proves them ours and whose process is gone)."""
    clean_stale_temps(root, OUTPUTS_TMP)
    points = root / POINTS
    if points.is_dir() and not points.is_symlink():
        keys = {m.group(1) for p in points.iterdir() if (m := _LEFTOVER.match(p.name))}
        for key in sorted(keys):
            clean_stale(points / key, POINT_KIND)


def _check_ours(root: Path, text: str) -> None:
    manifest = read_manifest(root)
    assert manifest is not None
    extra = [rel for rel in unlisted(root, manifest, check_hashes=True)
             if rel != f"{POINTS}/" and not rel.startswith(f"{POINTS}/")]
    points = root / POINTS
    if os.path.lexists(points):
        if points.is_symlink() or not points.is_dir():
            extra.append(POINTS)
        else:
            extra += [f"{POINTS}/{p.name}" for p in sorted(points.iterdir())
                      if p.is_symlink() or not is_whole_folder_of(p, POINT_KIND)]
    if extra:
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise InputError(f"--out {text!r}: holds what ibs-mprof did not write ({shown}); move "
                         "it away or name another folder")
