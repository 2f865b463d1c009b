"""`make bench` keeps working: the national benchmark runs end to end at a tiny scale.

No timing is asserted (a benchmark is not a test): only that every part runs on both databases,
that every target is printed with PASS or FAIL, that the rerun skips every file, and that the
naive baseline and the pipeline build identical warehouses.
"""
from __future__ import annotations

import re

import pytest

from reviews.bench import discover, main

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_the_national_benchmark_runs_small_on_both_databases(capsys, tmp_path):
    assert "national" in discover()
    main(["--only", "national", "--quick", "--national-partnerships", "2", "--national-skip", "dags",
          "--national-data", str(tmp_path / "returns")])
    out = capsys.readouterr().out
    for label in ("PostgreSQL", "SQLite"):
        assert re.search(rf"{label}: stage .*\n(.*\n){{3}}    whole run ", out), out
        assert re.search(rf"{label}: peak memory under 2 GiB .* (PASS|FAIL)", out)
        assert re.search(rf"{label}: GX validation at least 50,000 rows/s .* (PASS|FAIL)", out)
    assert re.search(r"PostgreSQL: whole run under 5 min .* (PASS|FAIL)", out)
    assert out.count("rerun with no new files: ") == 2 and ", 0 new" in out
    skipped = [int(n.replace(",", "")) for n in re.findall(r"rerun with no new files: ([\d,]+) files skipped", out)]
    files = int(re.search(r"data: .*?: ([\d,]+) CSV files", out).group(1).replace(",", ""))
    assert skipped == [files, files] and files > 0
    assert "identical tables (every row of every table): yes" in out
    assert re.search(r"^bench summary: \d+/\d+ targets passed \(national \d+/\d+\)", out, re.M)
    # The returns kept with --national-data are reused, not written again, by a second run.
    main(["--only", "national", "--quick", "--national-partnerships", "2", "--national-skip", "dags",
          "--national-skip", "sqlite", "--national-skip", "baseline", "--national-skip", "rerun",
          "--national-data", str(tmp_path / "returns")])
    assert "reused from" in capsys.readouterr().out
