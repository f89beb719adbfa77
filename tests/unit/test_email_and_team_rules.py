"""Pure parts of outbound e-mail and the team: settings, the message built for a transport, the transport chosen,
the outbox page's links, and the team's field rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.config import ConfigError, Settings, load_settings
from app.core.errors import ValidationFailed
from app.core.rbac import Role
from app.notifications.pages import linkify
from app.notifications.transports import Envelope, FolderTransport, SmtpTransport, transport_for
from app.stores.team import link_hash, new_password_fields, parse_role


def _settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"TILL_DATA_DIR": str(tmp_path), **env})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mail.example.com", "SMTP_URL must look like smtp://"),
        ("smtp://", "SMTP_URL must look like smtp://"),
        ("smtp://mail.example.com:port", "SMTP_URL has a bad port"),
        ("smtps://u:hunter2@mail.example.com:99999", "SMTP_URL has a bad port"),
    ],
)
def test_a_bad_smtp_url_is_one_line_without_the_password(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(tmp_path, SMTP_URL=url)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_smtp_settings_and_their_defaults(tmp_path: Path) -> None:
    plain = _settings(tmp_path)
    assert plain.smtp_url is None and plain.mail_from == "Till <till@localhost>"
    configured = _settings(tmp_path, SMTP_URL="smtps://u:p%40ss@mail.example.com:465", MAIL_FROM="Shop <s@ex.com>")
    assert configured.smtp_url == "smtps://u:p%40ss@mail.example.com:465"
    assert configured.mail_from == "Shop <s@ex.com>"
    assert "p%40ss" not in repr(configured)
    with pytest.raises(ConfigError, match="MAIL_FROM must be an e-mail address"):
        _settings(tmp_path, MAIL_FROM="nobody")


def test_the_transport_follows_the_settings(tmp_path: Path) -> None:
    dev = _settings(tmp_path)
    folder = transport_for(dev)
    assert isinstance(folder, FolderTransport) and folder.folder == tmp_path.resolve() / "outbox"
    smtp = transport_for(dataclasses.replace(dev, smtp_url="smtp://mail.example.com"))
    assert isinstance(smtp, SmtpTransport) and smtp.name == "smtp"
    assert transport_for(dataclasses.replace(dev, env="production")) is None


def test_the_envelope_becomes_a_multipart_message_with_a_stable_id() -> None:
    envelope = Envelope("01ab", "Shop <shop@example.com>", "ada@example.com", "Join us", "Hi\nhttp://x/y", "<p>Hi</p>")
    message = envelope.to_email()
    assert message["Message-ID"] == "<01ab@example.com>" and message["X-Till-Message"] == "01ab"
    assert (message["From"], message["To"], message["Subject"]) == (
        "Shop <shop@example.com>",
        "ada@example.com",
        "Join us",
    )
    assert message.get_content_type() == "multipart/alternative"
    plain = Envelope("01ab", "till@localhost", "a@b.c", "s", "text only", "").to_email()
    assert plain.get_content_type() == "text/plain"


def test_linkify_escapes_the_text_and_links_only_web_addresses() -> None:
    html = str(linkify('Open http://127.0.0.1:8000/invite/a_B-1. <b>x</b> & javascript:alert(1) "q"'))
    assert '<a href="http://127.0.0.1:8000/invite/a_B-1">http://127.0.0.1:8000/invite/a_B-1</a>.' in html
    assert "&lt;b&gt;x&lt;/b&gt; &amp; javascript:alert(1) &#34;q&#34;" in html
    assert html.count("<a ") == 1


def test_roles_and_new_passwords() -> None:
    assert parse_role("manager") == Role.MANAGER
    with pytest.raises(ValidationFailed) as caught:
        parse_role("emperor")
    assert caught.value.fields == {"role": "Choose one of: cashier, staff, manager, owner."}
    assert new_password_fields("short", "short") == {"password": "Use at least 10 characters."}
    assert new_password_fields("long enough!", "long enough?") == {"password_confirm": "The two passwords differ."}
    assert new_password_fields("long enough!", "long enough!") == {}


def test_only_the_hash_of_a_link_secret_is_kept() -> None:
    digest = link_hash("secret-part")
    assert len(digest) == 64 and "secret-part" not in digest and digest == link_hash("secret-part")
