"""Writing a file so that it is either whole under its final name or not there at all.

A process killed while writing a file in place (a worker killed mid-PDF, a demo stopped
mid-email) leaves a truncated file under the name readers trust. Here every file is first
written to a hidden temporary name in the same directory (`.<name>.<random>.tmp`), flushed
and fsynced, and only then given its final name in one step:

- `overwrite=False` (the default, Django's storage semantics): `os.link`, which fails with
  `FileExistsError` when the name is taken, so two writers racing for one name never
  replace each other's file (the loser picks another name);
- `overwrite=True`: `os.replace`, which swaps the old file for the new one atomically.

A write that fails removes its temporary file; one killed outright leaves only that hidden
temporary file (never read, never under a name anything looks up). The data is fsynced
before the rename, so even after a power cut the final name holds the whole file or
nothing (the rename itself may then be lost: the callers render or send again).

`AtomicFileSystemStorage` (the default storage, `STORAGES` in settings) saves invoice and
credit-note PDFs and logos this way; the embedded email backend (`core.mail`) writes its
`.eml` files with `file_write_atomic`.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from django.core.files.storage import FileSystemStorage
from django.utils._os import safe_makedirs

#: Filesystems without hard links answer `os.link` with one of these.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV}


def temp_file_write(directory: Path, chunks: Iterable[bytes | str], *, stem: str = "") -> Path:
    """Write `chunks` (str chunks as UTF-8) to a new hidden file in `directory`, flushed
    and fsynced; return its path. Anything failing removes the file and re-raises."""
    name = f".{(stem or 'file')[:200]}.{secrets.token_hex(6)}.tmp"
    path = Path(directory) / name
    # Created like Django's storage creates files (0o666 less the umask), never reused.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk.encode() if isinstance(chunk, str) else chunk)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def temp_file_publish(temp: Path, target: Path, *, overwrite: bool = False) -> None:
    """Give the written `temp` its final name `target` in one step (see the module text).
    Raises `FileExistsError` when `target` exists and `overwrite` is false (`temp` is then
    left for the caller to publish under another name or remove)."""
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        # No hard links here: a check then a rename (a narrow race instead of none).
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from exc
        os.replace(temp, target)
        return
    os.unlink(temp)


def file_write_atomic(
    target: Path, chunks: Iterable[bytes | str], *, overwrite: bool = False
) -> None:
    """Write `chunks` to `target`: whole or not at all (its directory must exist)."""
    target = Path(target)
    temp = temp_file_write(target.parent, chunks, stem=target.name)
    try:
        temp_file_publish(temp, target, overwrite=overwrite)
    finally:
        temp.unlink(missing_ok=True)


class AtomicFileSystemStorage(FileSystemStorage):
    """Django's file system storage, saving through a temporary file and a rename.

    Same names, permissions and collision handling as `FileSystemStorage` (a taken name
    gets Django's alternative name unless `allow_overwrite`); only the write differs: the
    content is written once, in full, before any final name points at it."""

    def _save(self, name, content):
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        try:
            if self.directory_permissions_mode is not None:
                safe_makedirs(directory, self.directory_permissions_mode, exist_ok=True)
            else:
                os.makedirs(directory, exist_ok=True)
        except FileExistsError as exc:
            raise FileExistsError(f"{directory} exists and is not a directory.") from exc

        temp = temp_file_write(Path(directory), content.chunks(), stem=os.path.basename(full_path))
        try:
            while True:
                try:
                    temp_file_publish(temp, Path(full_path), overwrite=self._allow_overwrite)
                    break
                except FileExistsError:
                    name = self.get_available_name(name)
                    full_path = self.path(name)
        finally:
            temp.unlink(missing_ok=True)

        if self.file_permissions_mode is not None:
            os.chmod(full_path, self.file_permissions_mode)
        name = os.path.relpath(full_path, self.location)
        self._ensure_location_group_id(full_path)
        return str(name).replace("\\", "/")
