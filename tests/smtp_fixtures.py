"""A real SMTP server on localhost (aiosmtpd) for tests, with login and switchable faults.

Import the fixture where it is needed: `from tests.smtp_fixtures import smtp_server  # noqa: F401`,
and `AIOSMTPD_WARNING` as a pytestmark to quiet aiosmtpd's (correct) plain-text AUTH warning.
The handler keeps every accepted message, parsed with the `email` package, and can be told to
misbehave: answer 421 or drop the connection at MAIL (nothing handed over: safe to retry),
drop it during DATA (the client cannot know), or refuse given recipients with 550.
"""
from __future__ import annotations

import datetime
import email
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from reviews.core.mail import SmtpSettings

# aiosmtpd warns that AUTH without TLS is unsafe; on 127.0.0.1 in a test that is the point.
AIOSMTPD_WARNING = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SMTP_USER = "circulation@merseyside-safeguarding.gov.uk"
SMTP_PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage

    @property
    def text(self) -> str:  # SMTP carries CRLF; compare with what was written
        return self.message.get_body(("plain",)).get_content().replace("\r\n", "\n")

    @property
    def html(self) -> str:
        return self.message.get_body(("html",)).get_content().replace("\r\n", "\n")

    def attachments(self) -> dict[str, bytes]:
        return {a.get_filename(): a.get_content() for a in self.message.iter_attachments()}


@dataclass
class RecordingHandler:
    """Stores accepted envelopes. `fault` applies to MAIL number > `fail_after` while `down`."""

    messages: list[Received] = field(default_factory=list)
    fault: str | None = None  # None | "421" | "drop" | "drop_in_data"
    fail_after: int = 0  # accepted messages before the fault starts
    fail_times: int | None = None  # how many commands fail, then recover by itself (None: until recover())
    reject: set[str] = field(default_factory=set)  # recipients answered with 550
    mail_commands: int = 0
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def recover(self) -> None:
        self.fault = None

    def _faulty(self) -> bool:
        if self.fault is None or len(self.messages) < self.fail_after:
            return False
        if self.fail_times is not None and self.failures >= self.fail_times:
            return False
        self.failures += 1
        return True

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self._lock:
            self.mail_commands += 1
            faulty = self.fault in ("421", "drop") and self._faulty()
            mode = self.fault
        if faulty and mode == "421":
            return "421 4.3.2 Service not available, closing transmission channel"
        if faulty and mode == "drop":
            server.transport.close()
            return "421 4.3.2 closing"  # not seen: the connection is already gone
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self.fault == "drop_in_data" and self._faulty():
                server.transport.close()  # the message was sent to us, we never say 250
                return "451 4.3.0 not seen"
            raw = envelope.original_content or envelope.content
            msg = email.message_from_bytes(raw, policy=policy.default)
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw, msg))
        return "250 2.0.0 Message accepted for delivery"

    def received_by(self, recipient: str) -> list[Received]:
        return [m for m in self.messages if recipient in m.rcpt_tos]


class _Authenticator:
    def __init__(self, user: str, password: str):
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.user,
            self.password,
        )
        # handled=False: let aiosmtpd answer 535 itself (handled=True would leave the client waiting)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass
class SmtpServer:
    host: str
    port: int
    user: str
    password: str
    handler: RecordingHandler

    security: str = "none"
    client_tls: ssl.SSLContext | None = None  # trusts the server's self-signed certificate

    def settings(self, *, user: str | None = None, password: str | None = None, timeout: float = 5) -> SmtpSettings:
        return SmtpSettings(
            host=self.host,
            port=self.port,
            user=self.user if user is None else user,
            password=self.password if password is None else password,
            security=self.security,
            timeout=timeout,
        )


@pytest.fixture
def smtp_server():
    """A logged-in-only SMTP server on 127.0.0.1 and a free port; stopped after the test."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=_Authenticator(SMTP_USER, SMTP_PASSWORD),
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, SMTP_USER, SMTP_PASSWORD, handler)
    finally:
        controller.stop()


def self_signed_tls(folder) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for 127.0.0.1, made on the spot."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


@pytest.fixture
def smtp_tls_server(tmp_path):
    """Like smtp_server, but STARTTLS is required before AUTH (the production setting)."""
    server_tls, client_tls = self_signed_tls(tmp_path)
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=_Authenticator(SMTP_USER, SMTP_PASSWORD),
        auth_required=True,
        auth_require_tls=True,
        require_starttls=True,
        tls_context=server_tls,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, SMTP_USER, SMTP_PASSWORD, handler, "starttls", client_tls)
    finally:
        controller.stop()
