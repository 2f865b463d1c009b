"""DAG file parse times, for the national benchmark (reviews_dev.bench.national_bench), which runs
this in a fresh interpreter so that nothing it imported itself is counted. It lives here, not
under include/, because it imports Airflow.

    python scripts/dag_parse_times.py dagbag DAGS_FOLDER   Airflow's own per-file parse times (JSON)
    python scripts/dag_parse_times.py own DAG_FILE         `python DAG_FILE` less the interpreter and
                                                           Airflow's own import (seconds)
    python scripts/dag_parse_times.py import airflow.sdk   only the import (its wall time is the
                                                           baseline every `python DAG_FILE` pays)
"""
from __future__ import annotations

import json
import runpy
import sys
import time


def dagbag(folder: str) -> dict:
    """The DagBag's per-file durations, as the dag processor measures them."""
    start = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag

    imported = time.perf_counter()
    bag = DagBag(dag_folder=folder)
    done = time.perf_counter()
    return {"import": imported - start, "load": done - imported, "errors": len(bag.import_errors),
            "files": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats}}


def own(path: str) -> float:
    """The file run as a script (runpy, as `python DAG_FILE` runs it) once airflow.sdk is imported."""
    import airflow.sdk  # noqa: F401 - imported first so its cost is not the file's

    start = time.perf_counter()
    runpy.run_path(path, run_name="__main__")
    return time.perf_counter() - start


if __name__ == "__main__":
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "import":
        __import__(target)
    else:
        print(json.dumps(dagbag(target)) if mode == "dagbag" else own(target))
