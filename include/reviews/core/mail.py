"""One way to send an email: a message, a recipient check, and two transports (outbox, SMTP).

Why it looks like this:
- Every message is built here with the standard `email` package (multipart/alternative text +
  HTML, attachments), so the outbox file and what the SMTP server receives are the same bytes.
  yagmail's own message builder is not used: it puts every `contents` string into both the HTML
  and the text part, rewrites newlines in HTML as `<br>`, and needs premailer to prettify.
- yagmail is used for what it is good at: connecting, STARTTLS/SSL and login (`login()`), and
  `close()`. The SMTP dialogue itself is driven here on yagmail's `smtp` connection, because
  `yagmail.SMTP.send()` retries disconnects itself (sleeping 3 s, 6 s), re-sends, and then
  returns False instead of raising, which would make a ledger's "sent" unknowable.
- Errors are sorted into three kinds the circulation ledger can act on: `TransientSendError`
  (try again later: 4xx replies, dropped or refused connections, time-outs),
  `PermanentSendError` (5xx, bad login, TLS problems: retrying will not help) and
  `DeliveryUnknownError` (the connection died after the message was handed over, so the server
  may have accepted it: never retried automatically).
- The Message-ID is derived from the content and the recipient, so the ledger can record it
  before sending and an analyst can look it up in the server's logs; the outbox file name uses
  the same digest, so writing the same message twice leaves one file.
"""
from __future__ import annotations

import base64
import hashlib
import mimetypes
import os
import re
import smtplib
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Protocol

import yagmail

SECURITY_MODES = ("starttls", "ssl", "none")
# Files whose name starts with this are the analysts' internal extract (learning.analyst_extract):
# unsuppressed, so a Message refuses to attach one, whoever asks.
NEVER_ATTACHED = "analyst_extract_"
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
# Deliberately plain: dot-atom local part, dotted host name with a letter TLD, ASCII only.
_ADDRESS_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_MAX_ADDRESS = 254
_MAX_ERROR = 1000


class MailError(Exception):
    """Anything this module refuses or fails to do."""


class HeaderInjectionError(MailError, ValueError):
    """A header value (subject, address, file name) contains a line break."""


class InvalidAddressError(MailError, ValueError):
    """Not a plausible single email address."""


class SendError(MailError):
    """A send that did not go through; `transient` says whether trying again may help."""

    transient = False
    uncertain = False


class TransientSendError(SendError):
    transient = True


class PermanentSendError(SendError):
    pass


class LoginError(PermanentSendError):
    """The SMTP server refused the credentials (affects every message, not just this one)."""


class DeliveryUnknownError(SendError):
    """The connection failed after the message was handed over: it may have been delivered."""

    uncertain = True


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: str | None
    security: str  # "starttls" | "ssl" | "none"
    timeout: float = 30

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"SMTP security must be one of {SECURITY_MODES}, not {self.security!r}")
        if not self.host:
            raise ValueError("SMTP host is empty")
        if (
            self.security == "none"
            and self.user is not None
            and self.host.lower() not in _LOCAL_HOSTS
        ):
            raise ValueError(
                f"refusing to send SMTP credentials unencrypted to {self.host}: use security "
                "'starttls' or 'ssl' (plain 'none' with a login is only for localhost)"
            )

    def __repr__(self) -> str:  # never show the password in logs or tracebacks
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port!r}, user={self.user!r}, "
            f"password={'***' if self.password else None}, security={self.security!r}, "
            f"timeout={self.timeout!r})"
        )


def _no_line_breaks(value: str, what: str) -> None:
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(f"{what} contains a line break (CR/LF); refused: {value[:80]!r}")


def check_address(address: str, what: str = "address") -> str:
    """Return the address normalised (stripped, lower case) or raise saying why it is refused.

    Lower-casing the whole address is a deliberate simplification: it makes "once per
    recipient" hold when a list spells the same mailbox twice with different case.
    """
    if not isinstance(address, str):
        raise InvalidAddressError(f"{what} is not text: {address!r}")
    _no_line_breaks(address, what)
    addr = address.strip().lower()
    if len(addr) > _MAX_ADDRESS or not _ADDRESS_RE.match(addr):
        raise InvalidAddressError(f"{what} is not a plausible email address: {address!r}")
    return addr


def domain_allowed(address: str, allowed_domains: Iterable[str]) -> bool:
    """True when the address's domain is an allowed domain or a subdomain of one."""
    domain = address.rsplit("@", 1)[-1].lower()
    for d in allowed_domains:
        d = str(d).strip().lower().lstrip("@").lstrip(".")
        if d and (domain == d or domain.endswith("." + d)):
            return True
    return False


def check_recipients(
    recipients: Iterable[str], allowed_domains: Iterable[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Split recipients into (allowed, refused) where refused is [(address, reason)].

    Allowed addresses come back normalised and de-duplicated in their first-seen order.
    No allowed domains configured means nothing is allowed (fail closed).
    """
    domains = tuple(allowed_domains)
    allowed: list[str] = []
    refused: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in recipients:
        try:
            addr = check_address(raw, "recipient")
        except MailError as exc:
            refused.append((str(raw), str(exc)))
            continue
        if addr in seen:
            continue
        seen.add(addr)
        if domain_allowed(addr, domains):
            allowed.append(addr)
        else:
            refused.append(
                (addr, f"domain {addr.rsplit('@', 1)[1]} is not in allowed_domains ({', '.join(domains) or 'none'})")
            )
    return allowed, refused


@dataclass(frozen=True)
class Message:
    to: tuple[str, ...]
    subject: str
    html: str
    text: str
    attachments: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.to, str):
            raise TypeError("Message.to must be a tuple of addresses, not one string")
        if not self.to:
            raise InvalidAddressError("a message needs at least one recipient")
        _no_line_breaks(self.subject, "subject")
        object.__setattr__(self, "to", tuple(check_address(a, "recipient") for a in self.to))
        object.__setattr__(self, "attachments", tuple(Path(p) for p in self.attachments))
        for p in self.attachments:
            _no_line_breaks(p.name, "attachment file name")
            if p.name.startswith(NEVER_ATTACHED):
                raise MailError(f"{p.name} is the analysts' internal extract: it is never circulated")


def message_digest(sender: str, message: Message) -> str:
    """sha256 over everything that makes this message this message (sender, recipients, content)."""
    h = hashlib.sha256()
    for part in (sender, "\0".join(message.to), message.subject, message.html, message.text):
        h.update(part.encode("utf-8"))
        h.update(b"\0\1")
    for p in message.attachments:
        h.update(p.name.encode("utf-8") + b"\0")
        h.update(p.read_bytes())
        h.update(b"\0\1")
    return h.hexdigest()


def message_id(sender: str, message: Message) -> str:
    """The Message-ID both transports put in the header: stable for the same message."""
    domain = check_address(sender, "sender").rsplit("@", 1)[1]
    return f"<{message_digest(sender, message)[:40]}.reviews@{domain}>"


_DATA_IMAGE = re.compile(r'src="data:image/(png|jpeg|gif);base64,([A-Za-z0-9+/=\s]+)"')


def inline_images(html: str) -> tuple[str, list[tuple[str, str, bytes]]]:
    """Move `data:` images out of the HTML into related parts: ([html with cid: links], [(cid, subtype, bytes)]).

    Outlook and Gmail do not show images given as data URIs; they do show images sent as
    parts of a multipart/related body and named by Content-ID. The Content-ID is derived from
    the image's bytes, so the same image gives the same message.
    """
    images: dict[str, tuple[str, bytes]] = {}

    def repl(m: re.Match) -> str:
        data = base64.b64decode("".join(m.group(2).split()))
        cid = f"{hashlib.sha256(data).hexdigest()[:24]}@reviews"
        images.setdefault(cid, (m.group(1), data))
        return f'src="cid:{cid}"'

    out = _DATA_IMAGE.sub(repl, html)
    return out, [(cid, sub, data) for cid, (sub, data) in images.items()]


def build_mime(sender: str, message: Message, msg_id: str | None = None) -> EmailMessage:
    """RFC 5322 message: multipart/alternative (text, then HTML with its inline images as a
    multipart/related part), attachments after."""
    sender = check_address(sender, "sender")
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(message.to)
    msg["Subject"] = message.subject
    msg["Date"] = formatdate(usegmt=True)  # a header, not a business decision
    msg["Message-ID"] = msg_id or message_id(sender, message)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: stops out-of-office loops
    msg.set_content(message.text, subtype="plain", charset="utf-8")
    html, images = inline_images(message.html)
    msg.add_alternative(html, subtype="html", charset="utf-8")
    if images:
        html_part = msg.get_payload()[1]
        for cid, subtype, data in images:
            html_part.add_related(data, maintype="image", subtype=subtype, cid=f"<{cid}>", disposition="inline",
                                  filename=f"chart-{cid[:8]}.{subtype}")
    for p in message.attachments:
        ctype, encoding = mimetypes.guess_type(p.name)
        if ctype is None or encoding is not None:
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(p.read_bytes(), maintype=maintype, subtype=subtype, filename=p.name)
    return msg


class Transport(Protocol):
    name: str

    def send(self, sender: str, message: Message) -> str:
        """Hand the message over; return a reference (Message-ID or outbox file path)."""
        ...


class OutboxTransport:
    """Writes each message as an .eml file into a folder (demo, tests, a human's review)."""

    name = "outbox"

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def send(self, sender: str, message: Message) -> str:
        digest = message_digest(sender, message)
        path = self.folder / f"{digest[:32]}.eml"
        if path.exists():  # the same message for the same recipient: already written
            return str(path)
        data = build_mime(sender, message, message_id(sender, message)).as_bytes()
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(path)


def _reply_text(resp: bytes | str) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)


def _by_code(code: int, text: str) -> SendError:
    cls = TransientSendError if 400 <= code < 500 else PermanentSendError
    return cls(f"SMTP {code} {text}")


class SmtpTransport:
    """Sends through an SMTP server with yagmail; one connection and login per message."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings, *, tls_context: ssl.SSLContext | None = None):
        self.settings = settings
        # smtplib's own default context does not verify certificates; this one does.
        self.tls_context = tls_context or ssl.create_default_context()

    def _client(self) -> yagmail.SMTP:
        s = self.settings
        extra: dict = {"timeout": s.timeout}  # yagmail passes these on to smtplib.SMTP / SMTP_SSL
        starttls: bool | dict = False
        if s.security == "ssl":
            extra["context"] = self.tls_context
        elif s.security == "starttls":
            starttls = {"context": self.tls_context}  # yagmail calls smtp.starttls(**this)
        return yagmail.SMTP(
            user=s.user,
            password=s.password if s.password is not None else "",  # never let yagmail ask keyring
            host=s.host,
            port=s.port,
            smtp_starttls=starttls,
            smtp_ssl=s.security == "ssl",
            smtp_skip_login=s.user is None,
            soft_email_validation=False,
            **extra,
        )

    def send(self, sender: str, message: Message) -> str:
        msg_id = message_id(sender, message)
        payload = build_mime(sender, message, msg_id).as_bytes()  # CRLF line ends (policy.SMTP)
        sender = check_address(sender, "sender")
        where = f"{self.settings.host}:{self.settings.port}"
        yag = self._client()
        try:
            try:
                yag.login()
            except smtplib.SMTPAuthenticationError as exc:
                raise LoginError(
                    f"SMTP login to {where} as {self.settings.user!r} was refused: "
                    f"{exc.smtp_code} {_reply_text(exc.smtp_error)}"
                ) from None
            except smtplib.SMTPNotSupportedError as exc:
                raise PermanentSendError(f"SMTP server {where} cannot do what the settings ask: {exc}") from None
            except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError) as exc:
                raise TransientSendError(f"cannot reach SMTP server {where}: {type(exc).__name__}: {exc}") from None
            except ssl.SSLError as exc:
                raise PermanentSendError(f"TLS with SMTP server {where} failed: {exc}") from None
            except smtplib.SMTPResponseException as exc:
                raise _by_code(exc.smtp_code, _reply_text(exc.smtp_error)) from None
            except OSError as exc:
                raise TransientSendError(f"cannot reach SMTP server {where}: {type(exc).__name__}: {exc}") from None
            _deliver(yag.smtp, sender, message.to, payload, where)
            return msg_id
        finally:
            try:
                yag.close()
            except Exception:  # the message's fate is already decided; QUIT failing changes nothing
                pass


def _deliver(smtp: smtplib.SMTP, sender: str, to: tuple[str, ...], payload: bytes, where: str) -> None:
    """MAIL, RCPT, DATA on an open connection, telling 'not sent' apart from 'may have been sent'."""
    try:
        smtp.ehlo_or_helo_if_needed()
        code, resp = smtp.mail(sender)
        if code != 250:
            raise _by_code(code, _reply_text(resp))
        for rcpt in to:
            code, resp = smtp.rcpt(rcpt)
            if code not in (250, 251):
                try:
                    smtp.rset()
                except (smtplib.SMTPException, OSError):
                    pass
                err = _by_code(code, _reply_text(resp))
                raise type(err)(f"recipient {rcpt} refused: {err}")
    except SendError:
        raise
    except smtplib.SMTPResponseException as exc:
        raise _by_code(exc.smtp_code, _reply_text(exc.smtp_error)) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientSendError(f"connection to {where} lost before the message was sent: {type(exc).__name__}: {exc}") from None
    try:
        code, resp = smtp.data(payload)
    except smtplib.SMTPResponseException as exc:  # the server answered: definitely not accepted
        raise _by_code(exc.smtp_code, _reply_text(exc.smtp_error)) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryUnknownError(
            f"connection to {where} lost during DATA; the server may have accepted the message: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if code != 250:
        raise _by_code(code, _reply_text(resp))


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same message again later may succeed."""
    if isinstance(exc, SendError):
        return exc.transient
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, ssl.SSLError):
        return False
    return isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError))


def describe_error(exc: BaseException) -> str:
    """One line for the ledger: the error's kind and the server's words, never the message body."""
    text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text[:_MAX_ERROR]
