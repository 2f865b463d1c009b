"""reviews.core.mail against a real SMTP server on localhost (aiosmtpd), and the outbox."""
from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from reviews.core.mail import (
    DeliveryUnknownError,
    HeaderInjectionError,
    InvalidAddressError,
    LoginError,
    Message,
    OutboxTransport,
    PermanentSendError,
    SmtpSettings,
    SmtpTransport,
    TransientSendError,
    check_recipients,
    describe_error,
    is_transient,
    message_id,
)
from tests.smtp_fixtures import (  # noqa: F401
    AIOSMTPD_WARNING,
    RecordingHandler,
    free_port,
    self_signed_tls,
    smtp_server,
    smtp_tls_server,
)

pytestmark = AIOSMTPD_WARNING

SENDER = "reviews.bulletins@merseyside-safeguarding.gov.uk"
HTML = "<html><body><h1>Learning bulletin</h1>\n<p>Theme: neglect &amp; voice of the child</p></body></html>"
TEXT = "Learning bulletin\n\nTheme: neglect & voice of the child\n"


def _message(tmp_path: Path, to=("lscp@liverpool.gov.uk",), subject="Merseyside learning bulletin Q1 2024-25"):
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(b"%PDF-1.4 not really\n")
    return Message(to=tuple(to), subject=subject, html=HTML, text=TEXT, attachments=(pdf,))


def test_smtp_login_and_send(smtp_server, tmp_path):  # noqa: F811
    msg = _message(tmp_path)
    ref = SmtpTransport(smtp_server.settings()).send(SENDER, msg)

    [got] = smtp_server.handler.messages
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ["lscp@liverpool.gov.uk"]
    m = got.message
    assert m["Subject"] == "Merseyside learning bulletin Q1 2024-25"
    assert m["From"] == SENDER and m["To"] == "lscp@liverpool.gov.uk"
    assert m["Message-ID"] == ref == message_id(SENDER, msg)
    assert got.text == TEXT
    assert got.html.strip() == HTML  # exactly our HTML: no yagmail <br> rewriting, no text mixed in
    assert "<h1>" not in got.text
    assert got.attachments() == {"summary.pdf": b"%PDF-1.4 not really\n"}
    alt = next(p for p in m.walk() if p.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alt.iter_parts()] == ["text/plain", "text/html"]


def test_starttls_verifies_the_certificate_then_logs_in(smtp_tls_server, tmp_path):  # noqa: F811
    trusted = SmtpTransport(smtp_tls_server.settings(), tls_context=smtp_tls_server.client_tls)
    assert trusted.send(SENDER, _message(tmp_path)).startswith("<")
    assert [m.rcpt_tos for m in smtp_tls_server.handler.messages] == [["lscp@liverpool.gov.uk"]]
    # The default context trusts only the system's CAs: a self-signed server is refused, for good.
    with pytest.raises(PermanentSendError, match="TLS"):
        SmtpTransport(smtp_tls_server.settings()).send(SENDER, _message(tmp_path))
    assert len(smtp_tls_server.handler.messages) == 1


def test_implicit_ssl(tmp_path):
    server_tls, client_tls = self_signed_tls(tmp_path)
    handler, port = RecordingHandler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=server_tls)
    controller.start()
    try:
        settings = SmtpSettings("127.0.0.1", port, None, None, "ssl", timeout=5)
        SmtpTransport(settings, tls_context=client_tls).send(SENDER, _message(tmp_path))
    finally:
        controller.stop()
    assert [m.rcpt_tos for m in handler.messages] == [["lscp@liverpool.gov.uk"]]


def test_wrong_password_fails_with_clear_error(smtp_server, tmp_path):  # noqa: F811
    transport = SmtpTransport(smtp_server.settings(password="wrong"))
    with pytest.raises(LoginError) as err:
        transport.send(SENDER, _message(tmp_path))
    text = str(err.value)
    assert "login" in text and smtp_server.user in text and "535" in text
    assert "wrong" not in text  # the password is never echoed
    assert not is_transient(err.value)
    assert smtp_server.handler.messages == []


def test_settings_never_show_password_and_refuse_cleartext_login_to_remote_host():
    s = SmtpSettings("127.0.0.1", 25, "u@x.gov.uk", "secret", "none")
    assert "secret" not in repr(s)
    with pytest.raises(ValueError, match="unencrypted"):
        SmtpSettings("smtp.example.gov.uk", 25, "u@x.gov.uk", "secret", "none")
    with pytest.raises(ValueError, match="security"):
        SmtpSettings("127.0.0.1", 25, None, None, "tls")
    SmtpSettings("smtp.example.gov.uk", 25, None, None, "none")  # relay without login: allowed


def test_unreachable_server_is_transient(tmp_path):
    settings = SmtpSettings("127.0.0.1", free_port(), None, None, "none", timeout=2)
    with pytest.raises(TransientSendError, match="cannot reach"):
        SmtpTransport(settings).send(SENDER, _message(tmp_path))


def test_421_is_transient_and_550_is_permanent(smtp_server, tmp_path):  # noqa: F811
    transport = SmtpTransport(smtp_server.settings())
    smtp_server.handler.fault = "421"
    with pytest.raises(TransientSendError, match="421") as err:
        transport.send(SENDER, _message(tmp_path))
    assert is_transient(err.value)
    smtp_server.handler.recover()
    smtp_server.handler.reject = {"nobody@liverpool.gov.uk"}
    with pytest.raises(PermanentSendError, match="550") as err:
        transport.send(SENDER, _message(tmp_path, to=("nobody@liverpool.gov.uk",)))
    assert not is_transient(err.value)
    assert smtp_server.handler.messages == []


def test_connection_dropped_before_data_is_transient(smtp_server, tmp_path):  # noqa: F811
    smtp_server.handler.fault = "drop"
    with pytest.raises(TransientSendError, match="before the message was sent"):
        SmtpTransport(smtp_server.settings()).send(SENDER, _message(tmp_path))


def test_connection_dropped_during_data_is_uncertain(smtp_server, tmp_path):  # noqa: F811
    smtp_server.handler.fault = "drop_in_data"
    with pytest.raises(DeliveryUnknownError, match="may have accepted") as err:
        SmtpTransport(smtp_server.settings()).send(SENDER, _message(tmp_path))
    assert err.value.uncertain and not is_transient(err.value)


def test_outbox_writes_parseable_eml_once(tmp_path):
    outbox = OutboxTransport(tmp_path / "outbox")
    msg = _message(tmp_path)
    path = Path(outbox.send(SENDER, msg))
    assert path.parent == tmp_path / "outbox" and path.suffix == ".eml"
    assert outbox.send(SENDER, msg) == str(path)  # same message, same recipient: same file
    other = Path(outbox.send(SENDER, _message(tmp_path, to=("wscp@wirral.gov.uk",))))
    assert other != path
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == sorted([path.name, other.name])

    with path.open("rb") as fh:
        m = email.message_from_binary_file(fh, policy=policy.default)
    assert m["To"] == "lscp@liverpool.gov.uk" and m["Subject"] == msg.subject
    assert m["Message-ID"] == message_id(SENDER, msg)
    assert m.get_body(("plain",)).get_content() == TEXT
    assert m.get_body(("html",)).get_content().strip() == HTML
    assert [a.get_filename() for a in m.iter_attachments()] == ["summary.pdf"]


@pytest.mark.parametrize(
    "subject", ["Bulletin\r\nBcc: everyone@example.com", "Bulletin\nX-Injected: 1", "Bulletin\r"]
)
def test_subject_with_line_break_is_refused(subject):
    with pytest.raises(HeaderInjectionError, match="subject contains a line break"):
        Message(to=("lscp@liverpool.gov.uk",), subject=subject, html=HTML, text=TEXT)


def test_address_with_line_break_is_refused(tmp_path):
    with pytest.raises(HeaderInjectionError, match="recipient"):
        Message(to=("lscp@liverpool.gov.uk\r\nBcc: x@evil.com",), subject="s", html=HTML, text=TEXT)
    with pytest.raises(HeaderInjectionError, match="sender"):
        OutboxTransport(tmp_path).send("a@b.gov.uk\nBcc: x@evil.com", _message(tmp_path))
    with pytest.raises(InvalidAddressError):
        Message(to=("not an address",), subject="s", html=HTML, text=TEXT)
    with pytest.raises(TypeError):
        Message(to="lscp@liverpool.gov.uk", subject="s", html=HTML, text=TEXT)


def test_check_recipients_domains_and_plausibility():
    allowed, refused = check_recipients(
        [
            "LSCP@Liverpool.GOV.UK",
            "lscp@liverpool.gov.uk",  # same mailbox, other case: once
            "gp.practice@nhs.net",
            "duty@merseyside.police.uk",
            "someone@gmail.com",
            "spoof@evilgov.uk",  # ends with "gov.uk" but is not a subdomain of it
            "spoof@gov.uk.evil.com",
            "two@addresses.gov.uk, three@x.gov.uk",
            "x@y.gov.uk\r\nBcc: all@evil.com",
            "",
            "no-at-sign.gov.uk",
        ],
        ["gov.uk", "NHS.net", "police.uk"],
    )
    assert allowed == ["lscp@liverpool.gov.uk", "gp.practice@nhs.net", "duty@merseyside.police.uk"]
    reasons = dict(refused)
    assert "not in allowed_domains" in reasons["someone@gmail.com"]
    assert "not in allowed_domains" in reasons["spoof@evilgov.uk"]
    assert "not in allowed_domains" in reasons["spoof@gov.uk.evil.com"]
    assert "not a plausible" in reasons["two@addresses.gov.uk, three@x.gov.uk"]
    assert "line break" in reasons["x@y.gov.uk\r\nBcc: all@evil.com"]
    assert len(refused) == 7
    assert check_recipients(["a@b.gov.uk"], []) == ([], [("a@b.gov.uk", "domain b.gov.uk is not in allowed_domains (none)")])


def test_describe_error_is_one_line():
    text = describe_error(PermanentSendError("SMTP 550 no\r\nsuch user"))
    assert "\n" not in text and "\r" not in text and text.startswith("PermanentSendError: SMTP 550")
