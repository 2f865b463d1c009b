"""Run the production deployment shape here, for real: separate Airflow processes (api-server,
scheduler, dag-processor, triggerer, Celery worker) on the local PostgreSQL and Redis.

Used by the distributed-engine and backfill tests. Everything binds to 127.0.0.1 on free ports.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "business_unit", "test-password-for-the-business-unit"

# A reschedule-mode sensor (bulletin_circulation.remind_signoff) that pokes again within a second or
# two meets Airflow 3.3's state race under a real scheduler: the executor's "success" for the last
# poke arrives after the scheduler has queued the next one, and the task (and so the run) is marked
# failed. Production pokes every 600 s; 15 s keeps the scheduler tests quick and clear of it.
SCHEDULER_POKE_SECONDS = "15"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Deployment:
    home: Path
    env: dict[str, str]
    port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _token: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # processes -------------------------------------------------------------------------
    def start(self, name: str, *args: str) -> None:
        log = (self.home / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [str(BIN / "airflow"), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.home,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Signal the process, its group and every descendant (task supervisors start their own
        sessions, so a group kill alone would leave a running task behind). Returns how many."""
        import psutil

        proc = self.processes.pop(name)
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for p in tree:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)
        psutil.wait_procs(tree, timeout=30)
        return len(tree)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)

    def start_worker(self, name: str = "worker") -> None:
        queue = self.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
        self.start(name, "celery", "worker", "--concurrency", "2", "--queues", queue, "--without-mingle", "--without-gossip")

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.home / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # REST API --------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            r = requests.post(f"{self.base}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs):
        r = requests.request(method, f"{self.base}/api/v2{path}", headers={"Authorization": f"Bearer {self.token()}"},
                             timeout=60, **kwargs)
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def wait_for(self, what: str, check, timeout: float = 180, every: float = 1.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = check()
                if last:
                    return last
            except (requests.RequestException, AssertionError) as exc:
                last = exc
            time.sleep(every)
        logs = "\n".join(f"--- {n}\n{self.log_tail(n)}" for n in ("scheduler", "worker", "worker2", "dag-processor"))
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{logs}")

    def wait_until_healthy(self) -> None:
        self.wait_for("the api-server", lambda: requests.get(f"{self.base}/api/v2/monitor/health", timeout=5).ok, 120)

    def wait_for_dags(self, dag_ids: set[str]) -> None:
        def parsed():
            found = {d["dag_id"] for d in self.api("GET", "/dags", params={"limit": 100})["dags"]}
            return dag_ids <= found

        self.wait_for(f"DAGs {sorted(dag_ids)} parsed", parsed, 180, 2)

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str | None, conf: dict | None = None) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})["task_instances"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        state = self.wait_for(f"{dag_id} {run_id} to finish",
                              lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s, timeout, 2)
        return state


def deployment_env(home: Path, metadata_url: str, warehouse_url: str, data_dir: Path, redis_db: int,
                   port: int, key: str) -> dict[str, str]:
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url.replace("+psycopg2", ""),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # Its own queue: two deployments on one Redis (two test runs at once) never take each other's tasks.
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"reviews_{os.getpid()}_{port}",
        "AIRFLOW__API__SECRET_KEY": "test-secret-key-0123456789abcdef",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-0123456789abcdef",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW_CONN_REVIEWS_WAREHOUSE": warehouse_url.replace("postgresql+psycopg2://", "postgresql://"),
        "AIRFLOW_VAR_REVIEWS_INBOX": str(data_dir / "inbox"),
        "AIRFLOW_VAR_REVIEWS_DATA_DIR": str(data_dir),
        "REVIEWS_PSEUDONYMISATION_KEY": key,
        "REVIEWS_RETRY_DELAY_SECONDS": "1",
        "REVIEWS_DEADLINES": "on",  # a real scheduler and dag-processor: deadlines as deployed
        "GX_ANALYTICS_ENABLED": "false",
    })
    return env


def start_deployment(home: Path, env: dict[str, str], port: int) -> Deployment:
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, cwd=home,
                   stdout=(home / "migrate.log").open("wb"), stderr=subprocess.STDOUT)
    dep = Deployment(home, env, port)
    dep.start("api-server", "api-server", "--port", str(port), "--host", "127.0.0.1")
    dep.start("scheduler", "scheduler")
    dep.start("dag-processor", "dag-processor")
    dep.start("triggerer", "triggerer")
    dep.start_worker()
    dep.wait_until_healthy()
    return dep
