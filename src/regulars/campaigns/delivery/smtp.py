"""Deliver messages over SMTP (host, port, STARTTLS, login).

Settings come from the environment (`SmtpSettings.from_env`):
``REGULARS_SMTP_HOST``, ``REGULARS_SMTP_PORT``, ``REGULARS_SMTP_USER``,
``REGULARS_SMTP_PASSWORD``, ``REGULARS_SMTP_STARTTLS`` and
``REGULARS_MAIL_FROM``. The password is read from the environment only and
never stored or logged.

With ``REGULARS_MAILDIR`` (or `SmtpSettings.maildir`) set, messages are
written to that Maildir instead of being sent: for trying flows, and for the
demo, without a mail server. Any mail client opens it.

Failures are sorted for the outbox: a server that cannot be reached, or
answers 4xx, is `Temporary` (retry later); a 5xx answer is `Permanent`,
with the server's own words.
"""

from __future__ import annotations

import mailbox
import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from regulars.errors import ConfigError

__all__ = ["Permanent", "SmtpSettings", "Temporary", "deliver"]


class Temporary(Exception):
    """Delivery failed for now; try again later."""


class Permanent(Exception):
    """The server refused the message for good."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to deliver."""

    host: str = "127.0.0.1"
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    mail_from: str = "shop@localhost"
    timeout: float = 30.0
    maildir: str | None = None

    def __repr__(self) -> str:  # never show the password
        return (f"SmtpSettings(host={self.host!r}, port={self.port}, user={self.user!r}, "
                f"starttls={self.starttls}, mail_from={self.mail_from!r}, "
                f"maildir={self.maildir!r})")  # fmt: skip

    @classmethod
    def from_env(cls, mail_from: str | None = None) -> SmtpSettings:
        """Read the ``REGULARS_SMTP_*`` and ``REGULARS_MAIL_FROM`` variables.

        Raises
        ------
        ConfigError
            If the port is not a number.
        """
        env = os.environ
        try:
            port = int(env.get("REGULARS_SMTP_PORT", "25"))
        except ValueError:
            raise ConfigError(
                f"REGULARS_SMTP_PORT={env['REGULARS_SMTP_PORT']!r} is not a port number."
            ) from None
        return cls(
            host=env.get("REGULARS_SMTP_HOST", "127.0.0.1"), port=port,
            user=env.get("REGULARS_SMTP_USER") or None,
            password=env.get("REGULARS_SMTP_PASSWORD") or None,
            starttls=env.get("REGULARS_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
            mail_from=env.get("REGULARS_MAIL_FROM") or mail_from or "shop@localhost",
            maildir=env.get("REGULARS_MAILDIR") or None,
        )  # fmt: skip


def deliver(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send one message.

    Raises
    ------
    Temporary
        Connection problems and 4xx answers.
    Permanent
        5xx answers, with the server's text.
    """
    if settings.maildir:
        try:
            mailbox.Maildir(settings.maildir, create=True).add(message)
        except OSError as exc:
            raise Temporary(f"{type(exc).__name__}: {exc}") from exc
        return
    try:
        with smtplib.SMTP(
            settings.host, settings.port, timeout=settings.timeout
        ) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        text = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')}"
        if 500 <= exc.smtp_code < 600:
            raise Permanent(text) from exc
        raise Temporary(text) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        answers = "; ".join(
            f"{code} {msg.decode(errors='replace')}"
            for code, msg in exc.recipients.values()
        )
        codes = [code for code, _ in exc.recipients.values()]
        if all(500 <= c < 600 for c in codes):
            raise Permanent(answers) from exc
        raise Temporary(answers) from exc
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        raise Temporary(f"{type(exc).__name__}: {exc}") from exc
