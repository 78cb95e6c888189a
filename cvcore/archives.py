"""Untrusted zip archives: extract safely into a new folder, or refuse.

An uploaded ``.zip`` of class folders is the usual way an analyst's images
reach the app, and a zip can attack the machine that opens it: entries named
``../../home/x`` or ``/etc/x`` write outside the target folder ("zip slip"),
symbolic links point anywhere, and a few kilobytes can inflate to gigabytes
(a zip bomb). :func:`extract_zip` checks every entry before it writes
anything, then counts the bytes it actually writes, since the sizes an archive
declares can lie.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import UnsafeArchiveError

__all__ = ["extract_zip", "ExtractResult", "DEFAULT_MAX_FILES", "DEFAULT_MAX_UNZIPPED_BYTES"]

DEFAULT_MAX_FILES = 20_000
DEFAULT_MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
_CHUNK = 1024 * 1024

# Made by archivers, never data: skipped without a word.
_JUNK_DIRS = {"__MACOSX"}
_JUNK_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class ExtractResult:
    """What :func:`extract_zip` wrote."""

    root: Path
    files: list = field(default_factory=list)  # relative POSIX paths, in archive order
    skipped: list = field(default_factory=list)  # archiver junk left out (``__MACOSX/``, ``.DS_Store``)
    bytes_written: int = 0


def _safe_name(info: zipfile.ZipInfo) -> PurePosixPath:
    """The entry's path relative to the target folder, or UnsafeArchiveError saying why not."""
    raw = info.filename
    name = raw.replace("\\", "/")  # some Windows archivers write backslashes
    if "\x00" in name:
        raise UnsafeArchiveError(f"The archive entry {raw!r} has a NUL character in its name; nothing was extracted.")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(
            f"The archive entry {raw!r} has an absolute path, which would write outside the target folder; "
            "nothing was extracted."
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"The archive entry {raw!r} climbs out of the target folder with '..'; nothing was extracted."
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UnsafeArchiveError(
            f"The archive entry {raw!r} is a symbolic link; links are refused because they can point anywhere. "
            "Nothing was extracted."
        )
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # no type bits: a plain file
        raise UnsafeArchiveError(
            f"The archive entry {raw!r} is a special file (a device or pipe), not a file or folder; "
            "nothing was extracted."
        )
    if info.flag_bits & 0x1:
        raise UnsafeArchiveError(f"The archive entry {raw!r} is encrypted; upload an archive without a password.")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _is_junk(path: PurePosixPath) -> bool:
    return bool(path.parts) and (path.parts[0] in _JUNK_DIRS or path.name in _JUNK_FILES
                                 or path.name.startswith("._"))


def _open_zip(src) -> zipfile.ZipFile:
    if isinstance(src, (bytes, bytearray, memoryview)):
        src = io.BytesIO(bytes(src))
    elif isinstance(src, (str, os.PathLike)) and not Path(src).is_file():
        raise UnsafeArchiveError(f"There is no archive at {str(src)!r}.")
    elif not isinstance(src, (str, os.PathLike)) and hasattr(src, "seek"):
        src.seek(0)
    try:
        return zipfile.ZipFile(src)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
        raise UnsafeArchiveError(f"This file is not a zip archive that can be read ({err}).") from None


def extract_zip(src, dest, *, max_files: int = DEFAULT_MAX_FILES,
                max_bytes: int = DEFAULT_MAX_UNZIPPED_BYTES) -> ExtractResult:
    """Extract an untrusted zip archive into a new folder, or refuse it whole.

    Every entry is checked before anything is written: an absolute path, a
    ``..`` that climbs out, a symbolic link, a special file, an encrypted
    entry, two entries with the same name, more than ``max_files`` files, or
    more than ``max_bytes`` declared in all refuse the archive. While
    writing, the bytes actually inflated are counted too (declared sizes can
    lie); past the cap, what was written is removed. Files are written with
    owner-only permissions; permissions and timestamps in the archive are
    ignored. Archiver junk (``__MACOSX/``, ``.DS_Store``, ``._*``) is left out.

    Args:
        src: the archive: a path, ``bytes``, or a binary file object (a
            Streamlit upload).
        dest: the folder to extract into; it must not exist or be empty.
        max_files: the most files accepted, >= 1.
        max_bytes: the most bytes, uncompressed, accepted, >= 1.

    Returns:
        :class:`ExtractResult` with ``dest``, the files written (relative
        POSIX paths) and the junk left out.

    Raises:
        UnsafeArchiveError: for an archive that is unsafe, over a cap, or not
            a zip; the message names the entry and the reason. Nothing is
            left in ``dest`` then.

    Example:
        >>> import io, tempfile, zipfile
        >>> buf = io.BytesIO()
        >>> with zipfile.ZipFile(buf, "w") as zf:
        ...     zf.writestr("cats/1.png", b"...")
        >>> extract_zip(buf.getvalue(), tempfile.mkdtemp() + "/out").files
        ['cats/1.png']
    """
    for arg, value in (("max_files", max_files), ("max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UnsafeArchiveError(f"`{arg}` must be a positive integer; received {value!r}.")
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UnsafeArchiveError(f"`dest` {str(dest)!r} must be a new or empty folder.")

    with _open_zip(src) as zf:
        infos = zf.infolist()
        plan, junk, seen, declared = [], [], {}, 0
        for info in infos:
            rel = _safe_name(info)
            if _is_junk(rel):
                junk.append(info.filename)
                continue
            if info.is_dir() or rel == PurePosixPath("."):
                continue
            key = str(rel).casefold()  # a.png and A.png would collide on macOS and Windows
            if key in seen:
                raise UnsafeArchiveError(
                    f"The archive holds {seen[key]!r} and {info.filename!r}, which would be written to the "
                    "same file; nothing was extracted."
                )
            seen[key] = info.filename
            plan.append((info, rel))
            declared += info.file_size
            if len(plan) > max_files:
                raise UnsafeArchiveError(
                    f"The archive holds more than {max_files:,} files, over the limit; split it or remove files."
                )
            if declared > max_bytes:
                raise UnsafeArchiveError(
                    f"The archive unpacks to more than {max_bytes / 2**20:,.0f} MiB, over the limit; "
                    "upload fewer or smaller images."
                )

        created = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True, mode=0o700)
        root = dest.resolve()
        written, files = 0, []
        try:
            for info, rel in plan:
                target = (root / rel).resolve()
                if root not in target.parents:  # belt and braces: the checks above should make this impossible
                    raise UnsafeArchiveError(f"The archive entry {info.filename!r} would be written outside the target folder.")
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                size = 0
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
                with zf.open(info) as fin, os.fdopen(fd, "wb") as fout:
                    while chunk := fin.read(_CHUNK):
                        size += len(chunk)
                        written += len(chunk)
                        if size > info.file_size or written > max_bytes:
                            raise UnsafeArchiveError(
                                f"The archive entry {info.filename!r} unpacks to more than it declares, or the "
                                f"archive to more than {max_bytes / 2**20:,.0f} MiB: it may be a zip bomb. "
                                "Nothing was kept."
                            )
                        fout.write(chunk)
                files.append(str(rel))
        except UnsafeArchiveError:
            _clear(dest, created)
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as err:
            _clear(dest, created)
            raise UnsafeArchiveError(f"The archive is damaged and could not be extracted ({err}). Nothing was kept.") from None
    return ExtractResult(root=dest, files=files, skipped=junk, bytes_written=written)


def _clear(dest: Path, created: bool) -> None:
    """Remove what a failed extraction wrote: the folder itself when it was made here."""
    if created:
        shutil.rmtree(dest, ignore_errors=True)
    else:
        for child in dest.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() and not child.is_symlink() else child.unlink(missing_ok=True)
