"""The PostgreSQL server the national benchmark measures: production's warehouse settings.

The machine's shared server (127.0.0.1:5432) is a test set-up: PostgreSQL's defaults
(`shared_buffers` 128 MB, `max_wal_size` 1 GB) and autovacuum off. A national load writes
gigabytes of WAL through it, so it checkpoints every few seconds, and its tables keep the
planner's statistics for empty tables. The warehouse in production is the `warehouse-db` service of
docker-compose.yml, which sets its own `-c` settings for that load; the benchmark measures those:
it reads them from docker-compose.yml (the one place they are written), starts a private server
with this machine's PostgreSQL binaries on them, in a temporary folder on a free port, and stops
and deletes it afterwards. The shared server is never reconfigured.

`REVIEWS_BENCH_POSTGRES` (an admin URL) names a server to use instead: nothing is started then.
Without PostgreSQL binaries on the machine the shared server is used, and the benchmark says so.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SHARED_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
COMPOSE_SERVICE = "warehouse-db"


@dataclass(frozen=True)
class Server:
    """Where the benchmark's databases are made: an admin URL, and what kind of server it is."""

    admin_url: str
    described: str  # one line for the printout
    settings: dict[str, str] = field(default_factory=dict)  # the -c settings it was started with


def compose_settings(compose_file: Path, service: str = COMPOSE_SERVICE) -> dict[str, str]:
    """The `-c name=value` settings of a service's `command` in docker-compose.yml, in order."""
    spec = yaml.safe_load(Path(compose_file).read_text(encoding="utf-8"))
    command = spec["services"][service].get("command") or []
    if isinstance(command, str):
        command = command.split()
    settings: dict[str, str] = {}
    for flag, value in zip(command, command[1:]):
        if flag == "-c":
            name, sep, setting = value.partition("=")
            if not sep or not name:
                raise ValueError(f"{compose_file}: {service}: '-c {value}' is not name=value")
            settings[name.strip()] = setting.strip()
    return settings


def postgres_bindir() -> Path | None:
    """This machine's PostgreSQL server binaries (initdb, pg_ctl): on PATH, or Debian's newest."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` account."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@contextmanager
def benchmark_server(compose_file: Path):
    """Yield the Server to measure (see the module doc); a private one is stopped and deleted after."""
    named = os.environ.get("REVIEWS_BENCH_POSTGRES")
    if named:
        yield Server(named, f"the server named by REVIEWS_BENCH_POSTGRES ({named.split('@')[-1]})")
        return
    bindir = postgres_bindir()
    if bindir is None:
        yield Server(SHARED_SERVER, "the machine's shared server at 127.0.0.1:5432 (no PostgreSQL binaries "
                                    "found to start one with production's settings)")
        return
    settings = compose_settings(compose_file)
    home = Path(tempfile.mkdtemp(prefix="reviews-bench-postgres-"))
    data, port = home / "data", _free_port()
    pg_ctl = _as_server_user([str(bindir / "pg_ctl"), "-D", str(data)])
    started = False
    try:
        try:
            if os.geteuid() == 0:
                shutil.chown(home, "postgres")
            subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                            "--auth=trust", "-E", "UTF8", "--no-sync"]),
                           check=True, capture_output=True, text=True)
            options = [f"-p {port}", f"-k {home}", "-c listen_addresses=127.0.0.1",
                       *(f"-c {name}={value}" for name, value in settings.items())]
            subprocess.run([*pg_ctl, "-o", " ".join(options), "-l", str(home / "server.log"), "-w", "-t", "60",
                            "start"], check=True, capture_output=True, text=True)
            started = True
        except (OSError, LookupError, subprocess.CalledProcessError) as exc:  # reported, the shared one is used
            why = (getattr(exc, "stderr", None) or str(exc)).strip().splitlines()
            server = Server(SHARED_SERVER, "the machine's shared server at 127.0.0.1:5432 (a private server with "
                                           f"production's settings did not start: {why[-1][:160] if why else exc})")
        else:
            said = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True,
                                  check=False).stdout
            version = (re.findall(r"PostgreSQL\) ([\d.]+)", said) or ["(version unknown)"])[0]
            server = Server(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
                            f"a private PostgreSQL {version} server with the {COMPOSE_SERVICE} settings "
                            "of docker-compose.yml ("
                            + (", ".join(f"{k}={v}" for k, v in settings.items()) or "its defaults") + ")",
                            settings)
        yield server
    finally:
        if started:
            subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, text=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
