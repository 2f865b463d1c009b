"""Land partnership files: find them, checksum them, keep an immutable raw copy.

Nothing from outside is trusted: a file name is only used after it matches the template's
naming pattern (the whole name: a trailing newline or control character does not match), and
the raw copy is stored under its checksum, never under a path built from the name, so a name
with `../` or control characters cannot put anything anywhere. Files already landed (same
partnership and sha256) are not landed twice. A file over the size limit (config
`limits.max_file_bytes`) is neither read, checksummed nor copied: it is refused by its size alone.

Only regular files are landed, and links are never followed: symbolic links, named pipes,
sockets, devices and sub-folders are skipped, each with one log line naming it (safely) and
saying why; files are opened with O_NOFOLLOW and checked to be regular once open, so a file
swapped for a link to /etc/passwd after the folder was listed is refused, not read. A file that
cannot be read (a permission or I/O error) is returned with `refused` naming the kind of error
only, so the partnership's other files still load and the file is recorded as failed.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from reviews.core.template import DATASETS

# One dataset per file: {dataset}_YYYY-MM-DD.csv, or .xlsx (a workbook holding that dataset only).
_DATASET_NAME = re.compile(
    r"^(?P<dataset>%s)_(?P<date>\d{4}-\d{2}-\d{2})\.(?P<ext>csv|xlsx)$" % "|".join(DATASETS), re.IGNORECASE
)
_XLSX_NAME = re.compile(r"^return_(?P<date>\d{4}-\d{2}-\d{2})\.xlsx$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._\- ]")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingFile:
    """A file in a partnership's drop folder, identified by content."""

    partnership_code: str
    path: Path  # where it was found
    safe_name: str  # printable version of the name, for records and messages
    sha256: str
    size_bytes: int
    dataset: str | None  # the dataset its name says; None for return_*.xlsx (one sheet per dataset)
    return_date: date | None
    kind: str | None  # csv | xlsx | None when the name is not the template's
    name_error: str | None
    refused: str | None = None  # why the file was not read at all (over the size limit), or None


def safe_name(name: str) -> str:
    """A printable, bounded version of an untrusted file name (control characters replaced)."""
    return _UNSAFE.sub("_", name)[:200] or "_"


def parse_name(name: str) -> tuple[str | None, str | None, date | None, str | None]:
    """(kind, dataset, return_date, error) from a file name following the template."""
    m = _DATASET_NAME.fullmatch(name)  # fullmatch: `$` alone would accept a trailing newline
    kind = m.group("ext").lower() if m else None
    if not m:
        m = _XLSX_NAME.fullmatch(name)
        kind = "xlsx"
    if not m:
        return None, None, None, (
            "the file name does not follow the template: expected {dataset}_YYYY-MM-DD.csv "
            "(or .xlsx) or return_YYYY-MM-DD.xlsx"
        )
    try:
        d = date.fromisoformat(m.group("date"))
    except ValueError:
        return None, None, None, f"the date in the file name ({m.group('date')}) is not a real date"
    dataset = m.group("dataset").lower() if "dataset" in m.groupdict() else None
    return kind, dataset, d, None


class NotARegularFile(OSError):
    """What was opened is not a regular file (a pipe, a socket, a device or a folder swapped in)."""


def open_regular(path: Path):
    """`path` opened for reading in binary, never through a symbolic link (O_NOFOLLOW: a link
    raises OSError) and only if it is a regular file (NotARegularFile otherwise). O_NONBLOCK
    keeps a named pipe swapped in after listing from blocking the open; it changes nothing for a
    regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotARegularFile("not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sha256_of(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open_regular(path) as fh:
        while block := fh.read(chunk):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def error_kind(exc: BaseException, doing: str) -> str:
    """'PermissionError while reading the file': the kind of an OS error and what was being done,
    never its message (which holds the path, and for some errors more)."""
    return f"{type(exc).__name__} while {doing}"


def _size_text(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def unread_digest(name: str, size: int, mtime_ns: int, why: str = "not read") -> str:
    """Stands for the sha256 of a file that is not read (over the size limit, or unreadable): the
    same file found again has the same digest, so it is recorded once, not every day (a file
    made readable again is read, and has its real sha256)."""
    return hashlib.sha256(f"{why}|{name}|{size}|{mtime_ns}".encode("utf-8", "surrogateescape")).hexdigest()


def _not_a_file(entry: os.DirEntry) -> str | None:
    """Why a folder entry is not landed (None: a regular file, to land)."""
    if entry.name.startswith("."):
        return "a hidden file"
    if entry.is_symlink():
        return "a symbolic link (links are never followed)"
    if entry.is_dir(follow_symlinks=False):
        return "a folder (a drop folder holds files only; sub-folders are not read)"
    if entry.is_file(follow_symlinks=False):
        return None
    mode = entry.stat(follow_symlinks=False).st_mode
    for test, what in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return f"{what}, not a regular file"
    return "not a regular file"


def discover(folder: Path, partnership_code: str, *, max_bytes: int | None = None) -> list[IncomingFile]:
    """Every regular file directly in the partnership's folder, oldest return first.

    Sub-folders, symbolic links (never followed), named pipes, sockets, devices and hidden files
    are skipped, each with one log line naming it (safely) and why: a drop folder holds files only.
    A file bigger than `max_bytes` is not read (its size comes from the directory entry) and is
    returned with `refused` saying why; so is a file that cannot be read (the kind of error only).
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"{partnership_code}: the drop folder {folder} does not exist")
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = safe_name(entry.name)
        try:
            skip = _not_a_file(entry)
            st = None if skip else entry.stat(follow_symlinks=False)
        except OSError as exc:  # gone since the folder was listed
            skip = error_kind(exc, "looking at it")
        if skip:
            log.info("%s: skipped %s: %s", partnership_code, name, skip)
            continue
        path = Path(entry.path)
        kind, dataset, rdate, err = parse_name(entry.name)
        refused = None
        if max_bytes is not None and st.st_size > max_bytes:
            digest, size = unread_digest(entry.name, st.st_size, st.st_mtime_ns), st.st_size
            refused = (f"the file is {_size_text(size)}, over the size limit of {_size_text(max_bytes)} "
                       "(config limits.max_file_bytes): it was not read or copied")
        else:
            try:
                digest, size = sha256_of(path)
            except OSError as exc:  # one unreadable file never stops the others: it is recorded failed
                why = error_kind(exc, "reading the file")
                digest, size = unread_digest(entry.name, st.st_size, st.st_mtime_ns, why), st.st_size
                refused = f"{why}: it was not read or copied"
                log.warning("%s: %s could not be read (%s)", partnership_code, name, why)
        found.append(
            IncomingFile(partnership_code, path, safe_name(entry.name), digest, size, dataset, rdate, kind, err, refused)
        )
    dataset_rank = {name: i for i, name in enumerate(DATASETS)}
    return sorted(
        found,
        key=lambda f: (f.return_date or date.max, dataset_rank.get(f.dataset or "", -1), f.safe_name),
    )


NOT_KEPT = "(not kept: over the size limit)"  # return_files.raw_path of a file refused by its size
NOT_COPIED = "(not kept: it could not be read or copied)"  # ... of a file that could not be read or copied


def keep_raw(incoming: IncomingFile, raw_root: Path) -> Path:
    """Copy the file, read-only, to raw/{partnership}/{sha256}; an existing copy is kept as is.

    A file refused by its size is not copied: the path returned is NOT_KEPT (not a real path);
    one refused because it could not be read, NOT_COPIED. The file is read through
    open_regular: never through a link, and only if it is still a regular file.
    """
    if incoming.refused is not None:
        return Path(NOT_KEPT if "limits.max_file_bytes" in incoming.refused else NOT_COPIED)
    target_dir = raw_root / incoming.partnership_code
    target_dir.mkdir(parents=True, exist_ok=True)
    suffix = f".{incoming.kind}" if incoming.kind else ".bin"
    target = target_dir / f"{incoming.sha256}{suffix}"
    if not target.exists():
        tmp = target.with_suffix(target.suffix + ".part")
        with open_regular(incoming.path) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        digest, _ = sha256_of(tmp)
        if digest != incoming.sha256:
            tmp.unlink()
            raise OSError(f"{incoming.partnership_code}: {incoming.safe_name} changed while being landed")
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    return target
