"""Land partnership files: find them, checksum them, keep an immutable raw copy.

Nothing from outside is trusted: a file name is only used after it matches the template's
naming pattern (the whole name: a trailing newline or control character does not match), and
the raw copy is stored under its checksum, never under a path built from the name, so a name
with `../` or control characters cannot put anything anywhere. Files already landed (same
partnership and sha256) are not landed twice. A file over the size limit (config
`limits.max_file_bytes`) is neither read, checksummed nor copied: it is refused by its size alone.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
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


def sha256_of(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _size_text(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def unread_digest(name: str, size: int, mtime_ns: int) -> str:
    """Stands for the sha256 of a file that is not read (over the size limit): the same file
    found again has the same digest, so it is recorded once, not every day."""
    return hashlib.sha256(f"not read|{name}|{size}|{mtime_ns}".encode("utf-8", "surrogateescape")).hexdigest()


def discover(folder: Path, partnership_code: str, *, max_bytes: int | None = None) -> list[IncomingFile]:
    """Every regular file directly in the partnership's folder, oldest return first.

    Sub-folders, symbolic links and hidden files are ignored: a drop folder holds files only.
    A file bigger than `max_bytes` is not read (its size comes from the directory entry) and is
    returned with `refused` saying why.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"{partnership_code}: the drop folder {folder} does not exist")
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            continue
        path = Path(entry.path)
        kind, dataset, rdate, err = parse_name(entry.name)
        st = entry.stat(follow_symlinks=False)
        refused = None
        if max_bytes is not None and st.st_size > max_bytes:
            digest, size = unread_digest(entry.name, st.st_size, st.st_mtime_ns), st.st_size
            refused = (f"the file is {_size_text(size)}, over the size limit of {_size_text(max_bytes)} "
                       "(config limits.max_file_bytes): it was not read or copied")
        else:
            digest, size = sha256_of(path)
        found.append(
            IncomingFile(partnership_code, path, safe_name(entry.name), digest, size, dataset, rdate, kind, err, refused)
        )
    dataset_rank = {name: i for i, name in enumerate(DATASETS)}
    return sorted(
        found,
        key=lambda f: (f.return_date or date.max, dataset_rank.get(f.dataset or "", -1), f.safe_name),
    )


NOT_KEPT = "(not kept: over the size limit)"  # return_files.raw_path of a file refused by its size


def keep_raw(incoming: IncomingFile, raw_root: Path) -> Path:
    """Copy the file, read-only, to raw/{partnership}/{sha256}; an existing copy is kept as is.

    A file refused by its size is not copied: the path returned is NOT_KEPT (not a real path).
    """
    if incoming.refused is not None:
        return Path(NOT_KEPT)
    target_dir = raw_root / incoming.partnership_code
    target_dir.mkdir(parents=True, exist_ok=True)
    suffix = f".{incoming.kind}" if incoming.kind else ".bin"
    target = target_dir / f"{incoming.sha256}{suffix}"
    if not target.exists():
        tmp = target.with_suffix(target.suffix + ".part")
        shutil.copyfile(incoming.path, tmp)
        digest, _ = sha256_of(tmp)
        if digest != incoming.sha256:
            tmp.unlink()
            raise OSError(f"{incoming.partnership_code}: {incoming.safe_name} changed while being landed")
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    return target
