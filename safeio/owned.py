"""Output folders a command can prove it wrote, and the checks that run before any work.

A command of ours may replace or delete only what it can prove it wrote. The proof is a
marker file (MARKER, JSON with our schema) that the command writes into every folder it
creates: the folder's kind ("report", "generated", ...) and each file it holds with its
SHA-256. A name pattern or a substring is never proof. Everything else is refused before any
work starts, with one line naming the option and the reason:

- an empty path, a file-system root, the home folder, the working folder or one of its
  ancestors, a folder holding one of the command's inputs;
- a file, a FIFO or a device; a dangling symlink, or a symlink to something not ours;
- a non-empty folder without our marker, or with files the marker does not list;
- a path whose parent is a file, is not writable, or whose name is too long for the
  temporary names built from it.

Hidden temporary folders (`.<name>.tmp-<pid>-<hex>`) carry a marker of kind "temp" written
before anything else goes in; backups (`.<name>.old-<pid>-<hex>`) are whole folders of ours.
Either is cleaned only when its marker proves it ours and the process named in it is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from safeio.errors import InputError

MARKER = ".ibs-mprof-owner.json"
SCHEMA = "ibs-mprof owned-folder 1"
TEMP = "temp"
"""Kind of a folder being built: everything in it is ours (it was marked before filling)."""
_MAX_MARKER_BYTES = 1 << 20
_TEMP_NAME_EXTRA = len(".") + len(".tmp-") + 10 + len("-") + 8
"""What a temporary or backup name adds to the output's name (pid up to 10 digits)."""


@dataclass(frozen=True)
class Manifest:
    """What a marker says: the folder's kind, its files (relative path -> SHA-256) and, for a
    folder being built, the process building it."""

    kind: str
    files: dict[str, str] = field(default_factory=dict)
    pid: int | None = None

    def to_bytes(self) -> bytes:
        data: dict[str, object] = {"schema": SCHEMA, "kind": self.kind,
                                   "files": dict(sorted(self.files.items()))}
        if self.pid is not None:
            data["pid"] = self.pid
        return (json.dumps(data, indent=1) + "\n").encode()


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's marker, or None when there is none or it is not one of ours (wrong
    schema, not JSON, a symlink, too large, paths that leave the folder)."""
    path = folder / MARKER
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > _MAX_MARKER_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    kind, files, pid = data.get("kind"), data.get("files"), data.get("pid")
    if not isinstance(kind, str) or not isinstance(files, dict):
        return None
    if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0):
        return None
    for rel, digest in files.items():
        if not (isinstance(digest, str) and _safe_relative(rel)):
            return None
    return Manifest(kind, dict(files), pid)


def _safe_relative(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel:
        return False
    parts = rel.split("/")
    return all(part not in ("", ".", "..") for part in parts) and rel != MARKER


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write the marker atomically (a temporary file in the folder, then a rename)."""
    tmp = folder / f"{MARKER}.{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(tmp, "xb") as handle:
            handle.write(manifest.to_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, folder / MARKER)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_files(folder: Path) -> dict[str, str]:
    """Every regular file under folder (relative path -> SHA-256), the marker left out."""
    out: dict[str, str] = {}
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if rel != MARKER and path.is_file() and not path.is_symlink():
                out[rel] = sha256_file(path)
    return out


def _entries(folder: Path) -> tuple[set[str], set[str]]:
    """(files, folders) under folder as relative paths; symlinks and others count as files."""
    files: set[str] = set()
    folders: set[str] = set()
    for root, dirs, names in os.walk(folder):
        base = Path(root).relative_to(folder)
        for name in dirs:
            if (Path(root) / name).is_symlink():
                files.add((base / name).as_posix())
            else:
                folders.add((base / name).as_posix())
        files.update((base / name).as_posix() for name in names)
    files.discard(MARKER)
    return files, folders


def unlisted(folder: Path, manifest: Manifest, check_hashes: bool) -> list[str]:
    """What in folder the manifest does not prove ours: files it does not list (or whose
    bytes changed, with check_hashes), folders that lead to no listed file."""
    files, folders = _entries(folder)
    extra = sorted(files - set(manifest.files))
    needed = {str(Path(rel).parent.as_posix()) for rel in manifest.files}
    needed |= {p.as_posix() for rel in manifest.files for p in Path(rel).parents}
    extra += sorted(f + "/" for f in folders - needed)
    if check_hashes:
        for rel, digest in sorted(manifest.files.items()):
            path = folder / rel
            if rel in files and (not path.is_file() or path.is_symlink()
                                 or sha256_file(path) != digest):
                extra.append(f"{rel} (changed since it was written)")
    return extra


def is_whole_folder_of(folder: Path, kind: str) -> bool:
    """Folder holds exactly what its marker of this kind lists, byte for byte."""
    manifest = read_manifest(folder)
    return (manifest is not None and manifest.kind == kind
            and not unlisted(folder, manifest, check_hashes=True))


# --- checks before any work ---------------------------------------------------------------


def _refuse(option: str, text: str, why: str) -> InputError:
    return InputError(f"{option} {text!r}: {why}")


def check_output_path(option: str, text: str, kind: str, inputs: Sequence[Path] = (),
                      whole: bool = True) -> Path:
    """The absolute folder `option TEXT` names, checked before any work: InputError (one line)
    unless it is absent, an empty folder, or a folder of this kind that we wrote. With whole
    (the folder is replaced as a whole), every entry must be listed in its marker with
    unchanged bytes; otherwise (files are written one by one) only the marker's kind counts.
    A symlink to a folder of ours gives the folder it points to."""
    if text == "":
        raise _refuse(option, text, "empty path; name a folder")
    if "\0" in text:
        raise _refuse(option, text, "contains a NUL character")
    path = Path(os.path.abspath(text))
    _check_names(option, text, path)
    try:
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            if not target.exists():
                raise _refuse(option, text, f"is a dangling symlink (to {target})")
            if not target.is_dir() or read_manifest(target) is None:
                raise _refuse(option, text, f"is a symlink to {target}, which ibs-mprof did "
                              "not write; name a new folder")
            return check_output_path(option, str(target), kind, inputs, whole)
        _check_place(option, text, path, inputs)
        if os.path.lexists(path):
            _check_existing(option, text, path, kind, whole)
        _check_parent_writable(option, text, path)
    except OSError as exc:
        raise _refuse(option, text, f"cannot be checked: {exc.strerror or exc}") from None
    return path


def _check_place(option: str, text: str, path: Path, inputs: Sequence[Path]) -> None:
    real = Path(os.path.realpath(path))
    if not path.name or real == Path(real.anchor):
        raise _refuse(option, text, "is a file-system root")
    cwd = Path(os.path.realpath(os.getcwd()))
    if real == cwd or real in cwd.parents:
        raise _refuse(option, text, "is the working folder or one of its parents; name a "
                      "folder inside it")
    home = os.environ.get("HOME")
    if home and real == Path(os.path.realpath(home)):
        raise _refuse(option, text, "is your home folder; name a folder inside it")
    for item in inputs:
        source = Path(os.path.realpath(item))
        if real == source or real in source.parents:
            raise _refuse(option, text, f"holds the input {item}; name another folder")


def _check_names(option: str, text: str, path: Path) -> None:
    existing = _first_existing(path)
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for part in path.relative_to(existing).parts:
        size = len(os.fsencode(part))
        if size + (_TEMP_NAME_EXTRA if part == path.name else 0) > name_max:
            raise _refuse(option, text, f"the name {part[:40]!r}... is {size} bytes; at most "
                          f"{name_max - _TEMP_NAME_EXTRA} fit beside the temporary names "
                          "this command makes")
    if len(os.fsencode(str(path))) + _TEMP_NAME_EXTRA + 64 > 4096:
        raise _refuse(option, text, "the path is too long")


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor)


def _check_existing(option: str, text: str, path: Path, kind: str, whole: bool) -> None:
    if not path.exists() and os.path.lexists(path):
        raise _refuse(option, text, "is a dangling symlink")
    if not path.is_dir():
        raise _refuse(option, text, "exists and is not a folder; name a folder")
    try:
        empty = next(path.iterdir(), None) is None
    except OSError as exc:
        raise _refuse(option, text, f"cannot be listed: {exc.strerror}") from None
    if empty:
        return
    manifest = read_manifest(path)
    if manifest is None:
        raise _refuse(option, text, "is a folder ibs-mprof did not write (no marker "
                      f"{MARKER}); name a new or empty folder")
    if manifest.kind != kind:
        raise _refuse(option, text, f"holds ibs-mprof's {manifest.kind} output, not a "
                      f"{kind}; name another folder")
    if whole:
        extra = unlisted(path, manifest, check_hashes=True)
        if extra:
            shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3
                                            else "")
            raise _refuse(option, text, f"holds what ibs-mprof did not write ({shown}); move "
                          "it away or name another folder")


def _check_parent_writable(option: str, text: str, path: Path) -> None:
    existing = _first_existing(path.parent)
    if not existing.is_dir():
        raise _refuse(option, text, f"{existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _refuse(option, text, f"{existing} is not writable")


# --- building and swapping ------------------------------------------------------------------


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on folder (flock on the folder itself: no lock file to clean),
    so two commands writing the same output take turns instead of removing each other's
    temporary files. Where flock is missing the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Linux/macOS
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def fresh_dir(parent: Path, prefix: str, mark: bool = True) -> Path:
    """A new folder `<prefix><pid>-<random>` under parent, marked as a temporary of this
    process before anything else goes in (unmarked and empty with mark=False: a rename
    target, which must be empty). It gets the user's umask (tempfile.mkdtemp would give
    0700)."""
    for _ in range(100):
        candidate = parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        if mark:
            try:
                write_manifest(candidate, Manifest(TEMP, pid=os.getpid()))
            except BaseException:
                candidate.rmdir()
                raise
        return candidate
    raise FileExistsError(f"no free temporary name {prefix}* in {parent}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: exists, another user's
        return True
    return True


def _name_pid(name: str, prefix: str) -> int | None:
    text = name[len(prefix):].split("-", 1)[0]
    return int(text) if text.isascii() and text.isdigit() else None


def remove_owned(folder: Path) -> bool:
    """Remove what folder's marker proves ours; True when the folder is gone.

    A temporary folder of a process that is gone goes whole (it was marked before it was
    filled). Any other folder loses only the files its marker lists with unchanged bytes,
    then the emptied subfolders, the marker and the folder itself if nothing else is left.
    """
    manifest = read_manifest(folder)
    if manifest is None:
        with contextlib.suppress(OSError):
            folder.rmdir()  # an empty folder of ours whose marker was never written
        return not os.path.lexists(folder)
    if manifest.kind == TEMP:
        shutil.rmtree(folder, ignore_errors=True)
        return not os.path.lexists(folder)
    for rel, digest in manifest.files.items():
        path = folder / rel
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink() and sha256_file(path) == digest:
                path.unlink()
    for root, _dirs, _names in sorted(os.walk(folder), key=lambda t: -len(t[0])):
        if Path(root) != folder:
            with contextlib.suppress(OSError):
                Path(root).rmdir()
    if not _entries(folder)[0] and not _entries(folder)[1]:
        (folder / MARKER).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()
    return not os.path.lexists(folder)


def clean_stale_temps(parent: Path, prefix: str) -> None:
    """Remove the temporary folders `<prefix><pid>-<hex>` in parent whose marker proves them
    ours and whose process is gone (empty ones of a gone process too: rmdir loses nothing)."""
    for stale in _stale_candidates(parent, prefix):
        manifest = read_manifest(stale)
        if manifest is None or (manifest.kind == TEMP and manifest.pid == _name_pid(
                stale.name, prefix)):
            remove_owned(stale)


def _stale_candidates(parent: Path, prefix: str) -> list[Path]:
    """Folders named `<prefix><pid>-...` in parent whose process is gone."""
    try:
        names = sorted(p for p in parent.iterdir() if p.name.startswith(prefix))
    except OSError:
        return []
    out = []
    for path in names:
        pid = _name_pid(path.name, prefix)
        if pid is not None and not _pid_alive(pid) and not path.is_symlink() and path.is_dir():
            out.append(path)
    return out


def clean_stale(out_dir: Path, kind: str) -> None:
    """Remove the hidden temporary and backup folders beside out_dir that killed runs left,
    when their marker proves them ours and the process named in their name is gone.

    A run killed between the two renames of the fallback swap leaves out_dir missing and the
    old folder only in its backup: that backup is put back at out_dir first. A temporary
    folder may also hold a whole folder of this kind: the new one before the swap, or the
    old one that RENAME_EXCHANGE pushed out.
    """
    parent, name = out_dir.parent, out_dir.name
    for stale in _stale_candidates(parent, f".{name}.old-"):
        if not os.path.lexists(out_dir) and is_whole_folder_of(stale, kind):
            os.replace(stale, out_dir)
        elif read_manifest(stale) is None or is_whole_folder_of(stale, kind):
            remove_owned(stale)
    prefix = f".{name}.tmp-"
    clean_stale_temps(parent, prefix)
    for stale in _stale_candidates(parent, prefix):
        if is_whole_folder_of(stale, kind):
            remove_owned(stale)
