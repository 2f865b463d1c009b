"""Where a partnership's returns come from: its drop folder, an SFTP server, or its own database.

Every source ends as files in one local folder, which ingest then lands raw, checksums and reads
exactly like a drop folder, so there is one path from "a return arrived" to the warehouse:

  folder  the partnership's subfolder of the inbox, as it is
  sftp    the files of a folder on the partnership's SFTP server, fetched into
          `{staging}/{code}/sftp/` (a file already fetched, same size and time, is not fetched again)
  sql     one query per dataset against the partnership's own database; each result is written to
          `{staging}/{code}/sql/{dataset}_{as-of date}.csv` (the template's file name, so the pull
          is landed, checksummed and reported like a file; the same data pulled again is the same
          file, and is not loaded twice)

No Airflow here: the Airflow layer looks up the connection and hands over plain objects: an
SFTP client (paramiko's `SFTPClient` interface: `listdir_attr`, `get`) or an SQLAlchemy URL.
The source is chosen by the partnership's `source` in the config; a new source is config only.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import posixpath
import stat
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from reviews.core.config import Partnership
from reviews.returns.landing import safe_name

log = logging.getLogger(__name__)
MAX_FETCH_BYTES = 100 * 1024 * 1024  # default of config limits.max_file_bytes: a return is kilobytes


class SourceError(RuntimeError):
    """A source cannot be reached or read; the message names the partnership, never case data."""


class SftpClient(Protocol):  # what paramiko's SFTPClient offers (and SFTPHook hands over)
    def listdir_attr(self, path: str = ".") -> list[Any]: ...

    def get(self, remotepath: str, localpath: str) -> Any: ...


@dataclass
class Gathered:
    """Where the partnership's files now are, and what happened getting them (no case data)."""

    folder: Path
    kind: str
    fetched: list[str] = field(default_factory=list)  # file names fetched or written this time
    notes: list[str] = field(default_factory=list)


def gather(
    partnership: Partnership,
    inbox: Path,
    staging: Path,
    as_of: date,
    *,
    sftp: SftpClient | None = None,
    sql_url: str | None = None,
    max_bytes: int = MAX_FETCH_BYTES,
) -> Gathered:
    """Bring the partnership's returns into a local folder and say which (see the module doc).

    `max_bytes` (config limits.max_file_bytes): an SFTP file bigger than this is not fetched
    (its size is in the listing); the note saying so names the file, and goes to the task log.
    """
    kind = partnership.source.get("kind", "folder")
    code = partnership.code
    if kind == "folder":
        return Gathered(Path(inbox) / code, kind)
    if kind == "sftp":
        if sftp is None:
            raise SourceError(f"{code}: the sftp source needs an SFTP client")
        return fetch_sftp(sftp, str(partnership.source["path"]), Path(staging) / code / "sftp", max_bytes=max_bytes)
    if kind == "sql":
        if not sql_url:
            raise SourceError(f"{code}: the sql source needs a database URL")
        return snapshot_sql(sql_url, partnership.source["queries"], Path(staging) / code / "sql", as_of)
    raise SourceError(f"{code}: unknown source kind {kind!r}")


def unknown_inbox_entries(inbox: Path, codes) -> list[str]:
    """Entries of the inbox root that are no partnership's folder (a folder named after no code in
    the config, a file, a link), each logged once, by its safe name, with why; their safe names.
    Nothing in them is read: a partnership's returns are only ever taken from its own folder."""
    inbox, codes = Path(inbox), set(codes)
    try:
        entries = sorted(os.scandir(inbox), key=lambda e: e.name)
    except OSError:  # no inbox at all: each partnership's task says its folder is missing
        return []
    skipped = []
    for entry in entries:
        if entry.name in codes:
            continue  # a partnership's folder (its task reads it, or says it is not a folder)
        if entry.name.startswith("."):
            continue  # hidden: not logged (editors' and sync tools' files)
        if entry.is_symlink():
            why = "a symbolic link (links are never followed)"
        elif entry.is_dir(follow_symlinks=False):
            why = "a folder named after no partnership in the config: not read"
        else:
            why = "not a partnership's folder (returns go in inbox/{partnership}/): not read"
        log.info("inbox: skipped %s: %s", safe_name(entry.name), why)
        skipped.append(safe_name(entry.name))
    return skipped


# --------------------------------------------------------------------------------------- sftp


def fetch_sftp(client: SftpClient, remote_dir: str, local_dir: Path, *, max_bytes: int = MAX_FETCH_BYTES) -> Gathered:
    """Copy the regular files of `remote_dir` into `local_dir` (hidden files and folders ignored).

    A file is written under a safe version of its name, through a hidden partial file, so a
    broken transfer never looks like a return. A name the server gives is never used as a path:
    one with a '/' or '\\' (`../x`), or that is '.' or '..', is skipped; control characters
    become '_'. Files already here with the same size and modification time are not fetched
    again; ingest decides by content (sha256) what is new.
    """
    local_dir.mkdir(parents=True, exist_ok=True)
    out = Gathered(local_dir, "sftp")
    try:
        entries = client.listdir_attr(remote_dir)
    except OSError as exc:
        raise SourceError(f"the SFTP folder {remote_dir!r} cannot be listed ({type(exc).__name__})") from None
    for entry in sorted(entries, key=lambda e: e.filename):
        name = entry.filename
        if name in (".", ".."):
            continue
        skip = _not_fetched(name, entry.st_mode or 0)
        if skip:
            log.info("SFTP %s: skipped %s: %s", safe_name(remote_dir), safe_name(name), skip)
            continue
        if (entry.st_size or 0) > max_bytes:
            out.notes.append(f"{safe_name(name)} was not fetched: {entry.st_size} bytes is over the size limit "
                             "(config limits.max_file_bytes)")
            continue
        target = local_dir / safe_name(name)
        if target.exists():
            st = target.stat()
            if st.st_size == entry.st_size and int(st.st_mtime) == int(entry.st_mtime or 0):
                continue
        partial = local_dir / f".{target.name}.part"
        try:
            client.get(posixpath.join(remote_dir, name), str(partial))
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise SourceError(f"{safe_name(name)} cannot be fetched from SFTP ({type(exc).__name__})") from None
        if entry.st_mtime:
            os.utime(partial, (entry.st_atime or entry.st_mtime, entry.st_mtime))
        os.replace(partial, target)
        out.fetched.append(target.name)
    return out


def _not_fetched(name: str, mode: int) -> str | None:
    """Why an SFTP folder entry is not fetched (None: a regular file, to fetch). The listing's
    modes are the entries' own (a link is a link, never what it points to)."""
    if "/" in name or "\\" in name:
        return "a name with a path separator in it (never used as a path)"
    if name.startswith("."):
        return "a hidden file"
    if stat.S_ISREG(mode):
        return None
    for test, what in ((stat.S_ISLNK, "a symbolic link (links are never followed)"),
                       (stat.S_ISDIR, "a folder (sub-folders are not read)"),
                       (stat.S_ISFIFO, "a named pipe, not a regular file"), (stat.S_ISSOCK, "a socket, not a regular file")):
        if test(mode):
            return what
    return "not a regular file"


# ---------------------------------------------------------------------------------------- sql


def _cell(value: Any) -> str:
    """A database value as a return's cell: ISO dates, whole numbers without '.0', Y/N flags."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (float, Decimal)) and value == int(value):
        return str(int(value))
    return str(value).strip()


def snapshot_sql(url: str, queries: dict[str, str], local_dir: Path, as_of: date) -> Gathered:
    """Run each dataset's query and write its rows as `{dataset}_{as_of}.csv` in `local_dir`.

    The queries come from the config (the business unit's own file), never from the data; a
    query may use the bound parameter `:as_of`. Rows are sorted, so the same data always gives
    the same file (and so the same sha256). Nothing is written to the partnership's database:
    the transaction is rolled back, and PostgreSQL sessions are read-only.
    """
    from sqlalchemy import create_engine, text

    local_dir.mkdir(parents=True, exist_ok=True)
    for old in local_dir.glob("*.csv"):  # earlier pulls are landed (raw/) already
        old.unlink()
    out = Gathered(local_dir, "sql")
    engine = create_engine(url, hide_parameters=True)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(postgresql_readonly=True)
            for dataset, sql in queries.items():
                stmt = text(sql)
                # A plain date (Airflow hands pendulum's, which database drivers may refuse).
                params = {"as_of": date(as_of.year, as_of.month, as_of.day)} if "as_of" in stmt.compile().params else {}
                try:
                    result = conn.execute(stmt, params)
                    header = list(result.keys())
                    rows = sorted(([_cell(v) for v in row] for row in result), key=lambda r: r)
                except Exception as exc:  # noqa: BLE001 - the error text may hold data: type only
                    raise SourceError(f"the {dataset} query failed ({type(exc).__name__})") from None
                buf = io.StringIO(newline="")
                writer = csv.writer(buf, lineterminator="\r\n")
                writer.writerow(header)
                writer.writerows(rows)
                path = local_dir / f"{dataset}_{as_of.isoformat()}.csv"
                path.write_bytes(buf.getvalue().encode("utf-8"))
                out.fetched.append(path.name)
            conn.rollback()
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - connection errors can carry the URL: type only
        raise SourceError(f"the partnership's database cannot be read ({type(exc).__name__})") from None
    finally:
        engine.dispose()
    return out
