"""Hostile CSV files against the limits (issue 14, "Bounded resources").

Each file is read as ingest reads it (`read_csv_return`, then `map_columns`) in a fresh Python
process, which reports its peak memory (VmHWM, its own high-water mark: imports included, about 150 MB of pandas and
SQLAlchemy) and the time the read took. The files are built for the worst case the limits allow
(config `limits`, defaults: 100 MiB a file, 1 MiB a line, 100,000 rows; the reader's MAX_COLUMNS
cells a line and MAX_CELLS cells a table):

  10 MB line       the issue's case: a header, two rows, an id and ten million commas, a row
                   (refused at the line limit; before it, every row was padded to ten million cells)
  lines at cap     the size limit filled with lines just under the line limit: an id, then commas
                   (each line cut at MAX_COLUMNS cells)
  widest table     the size limit filled with lines of MAX_COLUMNS short cells (refused at
                   MAX_CELLS, having read that many)
  most cells       the largest table that reads: MAX_CELLS cells in rows of 40 columns of text
                   (75,000 rows), each as long as the size limit allows (33 characters, the first
                   a space, so stripping makes a second copy of every cell)
  most cells 1252  the same in Windows-1252, every character a byte that becomes two in memory
                   (the euro sign)
  record at cap    a quoted cell that never closes, its lines each short: the size limit of one
                   record (refused at the line limit counted over the record)

Target: peak memory under 1 GiB for each (the largest file the limits allow).
`--hostile-readers PATH`: read with another readers.py (e.g. the one before the limits, from
`git show HEAD~1:include/reviews/returns/readers.py`), to measure the before figures.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from reviews_dev.bench import Target, benchmark, say

TARGET_BYTES = 1 << 30
_TIMEOUT = 600

_CHILD = r"""
import importlib.util, json, resource, sys, time
from pathlib import Path
from reviews.core.config import Limits
from reviews.returns.mapping import map_columns
from reviews.core.config import load_config
path, other = Path(sys.argv[1]), sys.argv[2]
if other:
    spec = importlib.util.spec_from_file_location("readers_under_test", other)
    readers = sys.modules["readers_under_test"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(readers)
else:
    from reviews.returns import readers
partnership = load_config().partnership("knowsley")
start = time.perf_counter()
try:
    result = readers.read_csv_return(path, "notifications", partnership.header_map("notifications"), limits=Limits())
    table = result.tables["notifications"]
    mapped = map_columns(table, "notifications", partnership)[0]
    outcome = f"read {len(table):,} rows x {table.shape[1] - 2} columns"
except readers.ReadError as exc:
    outcome = "refused: " + str(exc).split(":")[0]
took = time.perf_counter() - start
hwm = [line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")]
print(json.dumps({"outcome": outcome, "seconds": took, "peak": int(hwm[0].split()[1]) * 1024}))
"""


def _add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--hostile-readers", metavar="PATH", default="",
                       help="read the hostile files with this readers.py instead (before/after figures)")


def build_files(folder: Path) -> dict[str, Path]:
    """The hostile files (see the module doc), written in 1 MiB pieces: name -> path."""
    from reviews.core.config import Limits
    from reviews.returns.readers import MAX_CELLS, MAX_COLUMNS

    limits = Limits()
    size, line = limits.max_file_bytes, limits.max_line_bytes
    header = "notification_id,child_ref,incident_date,aware_date,notified_date,incident_type\r\n"
    files: dict[str, Path] = {}

    def write(name: str, pieces) -> None:
        path = folder / f"{name.replace(' ', '_')}.csv"
        with path.open("wb") as fh:
            for piece in pieces:
                fh.write(piece)
        files[name] = path

    def filled(first: bytes, unit: bytes, left: int):
        """`first`, then whole `unit`s while they fit in `left` bytes, in pieces of about 1 MiB."""
        yield first
        left -= len(first)
        per = max(1, (1 << 20) // len(unit))
        block = unit * per
        while left >= len(block):
            yield block
            left -= len(block)
        yield unit * (left // len(unit))

    row = b"N-%d,C-1,01/05/2024,02/05/2024,08/05/2024,death\r\n"
    write("10 MB line", [header.encode(), row % 1, row % 2, b"N-W" + b"," * (10 * 1000 * 1000), b"\r\n", row % 3])
    write("lines at cap", filled(header.encode(), b"N-1" + b"," * (line - 5) + b"\r\n", size))
    write("widest table", filled(header.encode(), b",".join([b"ab"] * MAX_COLUMNS) + b"\r\n", size))
    columns = 40
    rows = MAX_CELLS // columns - 1
    cell = max(1, min(size // MAX_CELLS - 1, 200))
    wide = header.rstrip("\r\n") + "".join(f",extra_{i}" for i in range(columns - 6)) + "\r\n"

    def most_cells(encoding: str, digit: str):
        yield wide.encode()
        for start in range(0, rows, 1000):
            yield b"".join(",".join(" " + f"{r:0{cell - 1}d}".replace("0", digit) for _c in range(columns)).encode(encoding)
                           + b"\r\n" for r in range(start, min(start + 1000, rows)))

    write("most cells", most_cells("utf-8", "0"))
    write("most cells 1252", most_cells("cp1252", "\u20ac"))
    write("record at cap", filled(header.encode() + b'N-1,"', b"x" * 78 + b"\r\n", size))
    return files


def measure(path: Path, readers_path: str = "") -> dict:
    """Read one file in a fresh process: {"outcome", "seconds", "peak" (bytes)}."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), readers_path], capture_output=True, text=True,
                          timeout=_TIMEOUT)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"outcome": f"crashed ({lines[-1][:80] if lines else done.returncode})", "seconds": float("nan"),
                "peak": float("nan")}
    return json.loads(done.stdout.strip().splitlines()[-1])


@benchmark("hostile_files", "hostile CSVs at the limits: peak memory and time to read or refuse (issue 14)",
           _add_arguments)
def hostile_files_bench(options: argparse.Namespace) -> list[Target]:
    readers_path = getattr(options, "hostile_readers", "") or ""
    if readers_path:
        say(f"  reading with {readers_path}")
    targets = []
    with tempfile.TemporaryDirectory(prefix="reviews-hostile-") as tmp:
        files = build_files(Path(tmp))
        say(f"  {'file':<14} {'size':>10} {'peak memory':>12} {'time':>8}  outcome")
        for name, path in files.items():
            got = measure(path, readers_path)
            peak = got["peak"]
            say(f"  {name:<14} {path.stat().st_size / 2**20:>6.1f} MiB {peak / 2**20:>8.0f} MiB {got['seconds']:>7.2f}s"
                f"  {got['outcome']}")
            targets.append(Target(f"{name}: peak memory under 1 GiB", f"{peak / 2**20:.0f} MiB",
                                  bool(peak == peak and peak < TARGET_BYTES)))
            path.unlink()
    return targets
