"""Sending email: over SMTP to a real server or a local sink, or into the log without one.

A job that sends mail may run twice (delivery is at least once): give each message a
``Message-ID`` derived from what it is about (the order confirmation does), and a mail client
sees a second copy as the same message.
"""

import logging
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from shelfwise.platform.settings import MailSettings

logger = logging.getLogger(__name__)


class Mailer(Protocol):
    """Sends an email."""

    async def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """Sends through the SMTP server ``settings`` name."""

    def __init__(self, settings: MailSettings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        settings = self._settings
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            timeout=settings.timeout_seconds,
            # A local sink speaks plain SMTP; a real relay is reached over TLS when it offers it.
            start_tls=None,
        )


class LogMailer:
    """Writes each message's envelope to the log: the quick start's mail, with no server."""

    async def send(self, message: EmailMessage) -> None:
        # The subject only: an address is personal data, and logs are kept and shared widely.
        logger.info(
            "email not sent (no SMTP server configured)", extra={"subject": message["Subject"]}
        )


def create_mailer(settings: MailSettings) -> Mailer:
    """An SMTP mailer when ``settings`` name a server, else the log."""
    return LogMailer() if settings.smtp_host is None else SmtpMailer(settings)
