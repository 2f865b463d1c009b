"""The raw copy (landing.keep_raw): byte for byte the file discovered, at any size (chunk edges),
read-only, never overwritten, and refused when the file changed after discover took its checksum."""
from __future__ import annotations

import hashlib
import os

import pytest

from reviews.returns.landing import discover, keep_raw


def _one(tmp_path, data: bytes, name: str = "notifications_2024-07-10.csv"):
    folder = tmp_path / "inbox" / "knowsley"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    [found] = discover(folder, "knowsley")
    return found


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (5 << 19) + 7])  # empty, chunk edges, 3 chunks
def test_copy_is_the_file_whatever_its_size(tmp_path, size):
    data = os.urandom(size)
    found = _one(tmp_path, data)
    raw = keep_raw(found, tmp_path / "raw")
    assert raw.read_bytes() == data and found.sha256 == hashlib.sha256(data).hexdigest() == raw.name.split(".")[0]
    assert not (raw.stat().st_mode & 0o222)  # read-only
    assert [p.name for p in raw.parent.iterdir()] == [raw.name]  # no partial file left


def test_a_file_changed_after_discover_is_not_kept(tmp_path):
    found = _one(tmp_path, b"a,b\r\n1,2\r\n")
    found.path.write_bytes(b"a,b\r\n1,3\r\n")  # same size, other bytes
    with pytest.raises(OSError, match="changed while being landed"):
        keep_raw(found, tmp_path / "raw")
    assert list((tmp_path / "raw" / "knowsley").iterdir()) == []  # neither the copy nor its partial file


def test_an_existing_copy_is_never_overwritten_and_a_stale_partial_is_replaced(tmp_path):
    found = _one(tmp_path, b"x,y\r\n")
    target_dir = tmp_path / "raw" / "knowsley"
    target_dir.mkdir(parents=True)
    (target_dir / f"{found.sha256}.csv.part").write_bytes(b"left by a run that stopped")
    raw = keep_raw(found, tmp_path / "raw")
    assert raw.read_bytes() == b"x,y\r\n" and sorted(p.name for p in target_dir.iterdir()) == [raw.name]
    before = raw.stat()
    found.path.write_bytes(b"changed later")  # the kept copy is not read, written or replaced again
    assert keep_raw(found, tmp_path / "raw") == raw
    after = raw.stat()
    assert (after.st_ino, after.st_mtime_ns, raw.read_bytes()) == (before.st_ino, before.st_mtime_ns, b"x,y\r\n")
