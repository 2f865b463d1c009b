"""A partnership's source is unreachable: its task fails (after its retries) and the business unit
is told, the other partnerships load, and the next run picks up. Through `dag.test()`, with a real
SFTP server on 127.0.0.1 that is really stopped and started again, and a drop folder that is
really removed. (A folder missing from the start: tests/integration/test_monitoring.py.)

  day 1  Sefton's SFTP server is down: Sefton fails and is reported; Knowsley loads.
  day 2  the server is back, Knowsley's drop folder has gone: Knowsley fails and is reported;
         Sefton loads everything it has.
  day 3  the folder is back, with a new return: Knowsley loads it, and what it had before.
At the end every file is loaded exactly once, with every row.
"""
from __future__ import annotations

import asyncio
import email
import shutil
import threading
from datetime import date, datetime, timezone
from email import policy
from pathlib import Path

import pytest

from reviews.core.config import load_config
from reviews_dev.synthetic import generate_returns
from tests.integration.returns_support import prepare, set_connection, write_config
from tests.sftp_server import PASSWORD, USER, _server_class

pytestmark = pytest.mark.slow

DAY_1, DAY_2, DAY_3 = date(2025, 10, 20), date(2025, 10, 21), date(2025, 10, 22)


class StoppableSftp:
    """An SFTP server (asyncssh, password login, chrooted) that can be stopped and started again
    on the same port."""

    def __init__(self, root: Path):
        self.root, self.port, self.acceptor = root, 0, None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-sftp-stoppable", daemon=True)
        self.thread.start()
        import asyncssh

        self.key = asyncssh.generate_private_key("ssh-ed25519")

    def start(self) -> None:
        import asyncssh

        async def listen():
            return await asyncssh.listen("127.0.0.1", self.port, server_host_keys=[self.key],
                                         server_factory=_server_class(), reuse_address=True,
                                         sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(self.root).encode()))

        self.acceptor = asyncio.run_coroutine_threadsafe(listen(), self.loop).result(timeout=30)
        self.port = self.acceptor.get_port()

    def stop(self) -> None:
        async def close():
            self.acceptor.close()
            await self.acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=30)
        self.acceptor = None

    def shutdown(self) -> None:
        if self.acceptor is not None:
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()

    def connection(self) -> dict:
        return {"conn_type": "sftp", "host": "127.0.0.1", "port": self.port, "login": USER, "password": PASSWORD,
                "extra": {"no_host_key_check": True, "look_for_keys": False, "allow_host_key_change": True,
                          "conn_timeout": 5}}


@pytest.fixture
def sftp(tmp_path):
    server = StoppableSftp(tmp_path / "sftp-root")
    (tmp_path / "sftp-root" / "returns").mkdir(parents=True)
    server.start()
    try:
        yield server
    finally:
        server.shutdown()


def _run(dagbag, day: date):
    dr = dagbag.get_dag("partnership_returns").test(logical_date=datetime(day.year, day.month, day.day,
                                                                          tzinfo=timezone.utc))
    return dr, {(ti.task_id, ti.map_index): ti for ti in dr.get_task_instances()}


def _notices(outbox: Path) -> list[str]:
    out = []
    for p in sorted(outbox.glob("*.eml")):
        m = email.message_from_bytes(p.read_bytes(), policy=policy.default)
        if m["Subject"].startswith("[reviews] failed"):
            out.append(m["Subject"] + "\n" + m.get_body(("plain",)).get_content())
    return out


def test_unreachable_sources_fail_alone_and_the_next_run_picks_up(dagbag, tmp_path, sqlite_url, monkeypatch, sftp):
    config = write_config(tmp_path, {"knowsley": {},
                                     "sefton": {"source": {"kind": "sftp", "conn_id": "sefton_sftp", "path": "/returns"}}})
    env = prepare(monkeypatch, tmp_path, sqlite_url, config)
    cfg = load_config(config)
    made = generate_returns(env.inbox, cfg, start=date(2025, 4, 1), end=date(2025, 9, 30), seed=4, inflate=2,
                            partnerships=["knowsley", "sefton"])
    for f in (env.inbox / "sefton").iterdir():  # Sefton's returns are on its SFTP server
        shutil.move(str(f), sftp.root / "returns" / f.name)
    (env.inbox / "sefton").rmdir()
    set_connection(monkeypatch, "sefton_sftp", sftp.connection())
    # The SSH hook tries three times, 3-5 s apart, before its task try fails: keep the tries, not the waits.
    import tenacity
    from airflow.providers.ssh.hooks import ssh as ssh_hook

    monkeypatch.setattr(ssh_hook, "wait_fixed", lambda _s: tenacity.wait_none())
    monkeypatch.setattr(ssh_hook, "wait_random", lambda _a, _b: tenacity.wait_none())
    knowsley_files = sorted(p.name for p in (env.inbox / "knowsley").iterdir())
    later = {}  # a Knowsley return that arrives while its folder is gone
    for name in knowsley_files[-2:]:
        later[name] = (env.inbox / "knowsley" / name).read_bytes()
        (env.inbox / "knowsley" / name).unlink()

    # Day 1: the SFTP server is down.
    sftp.stop()
    dr, tis = _run(dagbag, DAY_1)
    assert dr.state == "failed"
    assert tis[("ingest", 0)].state == "success" and tis[("ingest", 1)].state == "failed"
    assert tis[("ingest", 1)].try_number == 3  # retried, then given up for today
    assert tis[("publish_cases", -1)].state == "success" and tis[("send_feedback", -1)].state == "success"
    [notice] = _notices(env.data_dir / "outbox")
    assert notice.startswith("[reviews] failed: partnership_returns.ingest for sefton") and "Partnership: sefton" in notice
    assert env.scalar("select count(*) from return_files where partnership_code = 'sefton'") == 0
    day1_knowsley = env.scalar("select count(*) from return_files where partnership_code = 'knowsley'")
    assert day1_knowsley == len(knowsley_files) - 2

    # Day 2: the server is back; Knowsley's drop folder has been removed.
    sftp.start()
    shutil.rmtree(env.inbox / "knowsley")
    dr, tis = _run(dagbag, DAY_2)
    assert dr.state == "failed"
    assert tis[("ingest", 0)].state == "failed" and tis[("ingest", 1)].state == "success"
    [new] = [n for n in _notices(env.data_dir / "outbox") if n != notice]  # outbox files are not in time order
    assert new.startswith("[reviews] failed: partnership_returns.ingest for knowsley")
    assert "FileNotFoundError: knowsley: the drop folder" in new
    assert env.scalar("select count(*) from return_files where partnership_code = 'sefton'") == sum(
        1 for f in made.files if f.parent.name == "sefton")

    # Day 3: the folder is back, with what had arrived meanwhile.
    (env.inbox / "knowsley").mkdir()
    for name, data in later.items():
        (env.inbox / "knowsley" / name).write_bytes(data)
    dr, tis = _run(dagbag, DAY_3)
    assert dr.state == "success", {k: ti.state for k, ti in tis.items()}
    assert len(_notices(env.data_dir / "outbox")) == 2  # nothing new to report

    # Every file once, every row read.
    files = env.rows("select partnership_code, count(*) n, sum(rows_read) r from return_files group by partnership_code")
    got = {f["partnership_code"]: (f["n"], f["r"]) for f in files}
    for code in ("knowsley", "sefton"):
        expected_files = sum(1 for f in made.files if f.parent.name == code)
        assert got[code] == (expected_files, sum(made.rows[code].values())), code
    assert env.scalar("select count(*) from (select sha256 from return_files group by partnership_code, sha256 "
                      "having count(*) > 1) d") == 0
