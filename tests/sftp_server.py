"""A real SFTP server on 127.0.0.1 for the tests (asyncssh, password login, chrooted to a folder).

It runs in its own thread with its own event loop, on a free port, with a fresh host key, and
stops when the fixture ends. Airflow's SFTPHook (paramiko) talks to it like to any server.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

USER, PASSWORD = "knowsley-returns", "sftp-test-password-123"


@dataclass
class SftpServer:
    root: Path
    host: str
    port: int
    user: str = USER
    password: str = PASSWORD

    def airflow_connection(self) -> dict:
        """The fields of an Airflow SFTP connection to this server (host key not checked: it is new)."""
        return {"conn_type": "sftp", "host": self.host, "port": self.port, "login": self.user,
                "password": self.password,
                "extra": {"no_host_key_check": True, "look_for_keys": False, "allow_host_key_change": True}}


def _server_class():
    import asyncssh

    class _Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == USER and password == PASSWORD

    return _Server


@pytest.fixture
def sftp_server(tmp_path):
    import asyncssh

    root = tmp_path / "sftp-root"
    root.mkdir()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-sftp-server", daemon=True)
    thread.start()
    server_cls = _server_class()

    async def start():
        key = asyncssh.generate_private_key("ssh-ed25519")
        return await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[key], server_factory=server_cls,
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
        )

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    try:
        yield SftpServer(root=root, host="127.0.0.1", port=acceptor.get_port())
    finally:
        async def stop():
            acceptor.close()
            await acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
