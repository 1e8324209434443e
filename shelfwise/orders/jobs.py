"""What follows a placed order, outside the request: the buyer's confirmation email, the
distributor's signed webhook, and the sales record the analytics read.

Each job runs for the tenant whose request sent it (``tenant_job``), reads the order afresh
from the primary, and is safe to run twice, since delivery is at least once: the email's
``Message-ID`` and the webhook's ``webhook-id`` name the order, so a receiver sees a repeat
as the same message, and a sale is recorded once per order and book.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator, AnyHttpUrl, SecretStr, UrlConstraints
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shelfwise.identity.models import User
from shelfwise.orders.models import BookSale, Order
from shelfwise.orders.repository import SqlOrderRepository
from shelfwise.platform.db import Database
from shelfwise.platform.jobs import JobFunction, Jobs, JobsNotSentError, PermanentJobError
from shelfwise.platform.mail import Mailer
from shelfwise.tenancy.config import SettingSpec, TenantConfig, tenant_setting
from shelfwise.tenancy.context import current_tenant_id
from shelfwise.tenancy.jobs import tenant_job
from shelfwise.tenancy.secrets import TenantSecrets

logger = logging.getLogger(__name__)

SEND_CONFIRMATION = "orders.send_confirmation"
NOTIFY_DISTRIBUTOR = "orders.notify_distributor"
RECORD_SALE = "orders.record_sale"


# The order and its signature travel to the distributor: in clear only on this machine.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def _https_or_local(url: AnyHttpUrl) -> AnyHttpUrl:
    if url.scheme != "https" and url.host not in LOCAL_HOSTS:
        raise ValueError("a webhook URL is https:// (http:// only to this machine, to develop)")
    return url


WebhookUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=2000), AfterValidator(_https_or_local)]
DISTRIBUTOR_WEBHOOK_URL: SettingSpec[AnyHttpUrl | None] = tenant_setting(
    "orders.distributor_webhook_url",
    WebhookUrl | None,
    None,
    "where each new order is posted, signed with the tenant's distributor_webhook secret "
    "(null: not posted)",
)
# The tenant's secret (part 10) that signs the webhook; the distributor holds the same.
DISTRIBUTOR_WEBHOOK_SECRET = "distributor_webhook"
WHSEC_PREFIX = "whsec_"
# Sending the jobs after an order must not hold its response for long when Redis is slow.
SEND_TIMEOUT_SECONDS = 1.0
# A distributor that has not answered in this long, the whole exchange, is tried again later.
WEBHOOK_SECONDS = 10.0


@dataclass(frozen=True)
class OrderJobResources:
    """What the order jobs use, built once per process (the API's or a worker's)."""

    database: Database
    config: TenantConfig
    secrets: TenantSecrets
    mailer: Mailer
    http: httpx.AsyncClient
    sender: str  # the confirmation's From address


def order_jobs(resources: OrderJobResources) -> dict[str, JobFunction]:
    """The order jobs by name, bound to ``resources``."""

    @tenant_job
    async def send_confirmation(order_id: int, user_id: int) -> None:
        async with resources.database.session() as session:
            order = await _order(SqlOrderRepository(session), order_id)
            # Users are not TenantScoped (logging in finds them before any tenant is known): the
            # query names the tenant itself, or a message could mail another tenant's user.
            address = await session.scalar(
                select(User.email).where(User.id == user_id, User.tenant_id == current_tenant_id())
            )
        if address is None:
            raise PermanentJobError(f"user {user_id} is not this tenant's")
        await resources.mailer.send(confirmation(order, address, resources.sender))

    @tenant_job
    async def notify_distributor(order_id: int) -> None:
        async with resources.database.session() as session:
            url = await resources.config.get(session, DISTRIBUTOR_WEBHOOK_URL)
            if url is None:
                return  # this tenant has no distributor to tell
            secret = await resources.secrets.get(session, DISTRIBUTOR_WEBHOOK_SECRET)
            order = await _order(SqlOrderRepository(session), order_id)
        if secret is None:
            raise PermanentJobError(
                f"a webhook URL is set but no {DISTRIBUTOR_WEBHOOK_SECRET!r} secret to sign it"
            )
        body = json.dumps(order_document(order), separators=(",", ":")).encode()
        headers = signed_headers(secret, f"order-{current_tenant_id()}-{order.id}", body)
        # The whole exchange is bounded (httpx's timeout is per read), and the answer's body is
        # never read: only its status matters.
        async with asyncio.timeout(WEBHOOK_SECONDS):
            async with resources.http.stream(
                "POST", str(url), content=body, headers=headers
            ) as sent:
                sent.raise_for_status()  # an error answer is tried again, up to the attempts

    @tenant_job
    async def record_sale(order_id: int) -> None:
        async with resources.database.session() as session:
            order = await _order(SqlOrderRepository(session), order_id)
            recorded = await session.scalar(
                select(BookSale.order_id).where(BookSale.order_id == order_id).limit(1)
            )
            if recorded is not None:
                return  # a repeat delivery
            session.add_all(
                BookSale(
                    order_id=order.id,
                    book_id=item.book_id,
                    copies=item.quantity,
                    amount=item.line_total_amount,
                    currency=item.unit_price_currency,
                )
                for item in order.items
            )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()  # a second delivery, running at the same moment

    return {
        SEND_CONFIRMATION: send_confirmation,
        NOTIFY_DISTRIBUTOR: notify_distributor,
        RECORD_SALE: record_sale,
    }


async def _order(orders: SqlOrderRepository, order_id: int) -> Order:
    order = await orders.get(order_id)
    if order is None:
        # The job was sent after the commit, so the order exists unless it is another
        # tenant's: running it again cannot help.
        raise PermanentJobError(f"order {order_id} is not this tenant's")
    return order


def confirmation(order: Order, address: str, sender: str) -> EmailMessage:
    """The buyer's confirmation of ``order``."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = address
    message["Subject"] = f"Order {order.id} confirmed"
    # The same order gives the same id: a second delivery of the job is a duplicate, not news.
    domain = sender.rpartition("@")[2]
    message["Message-ID"] = f"<order-{current_tenant_id()}-{order.id}@{domain}>"
    lines = [
        f"{item.quantity} x book {item.book_id} at {item.unit_price}: {item.line_total}"
        for item in order.items
    ]
    message.set_content(
        "\n".join(
            [
                f"Your order {order.id} is confirmed.",
                "",
                *lines,
                f"Discount: {order.discount_percent}%",
                f"Total: {order.total}",
            ]
        )
    )
    return message


def order_document(order: Order) -> dict[str, Any]:
    """The webhook's body: what a distributor needs of the order (its id, total and items)."""
    return {
        "type": "order.placed",
        "order": {
            "id": order.id,
            "total": {
                "amount": str(order.total_amount),
                "currency": order.total_currency,
            },
            "items": [{"book_id": item.book_id, "quantity": item.quantity} for item in order.items],
        },
    }


def signed_headers(
    secret: SecretStr, message_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """Headers that let the receiver check ``body`` came from us, unaltered and recently.

    The scheme is Standard Webhooks' (standardwebhooks.com): an HMAC-SHA256, keyed with the
    shared secret, over ``id.timestamp.body``, sent as ``v1,<base64>``. The id stays the same
    on every retry, so the receiver can drop repeats; the timestamp lets it refuse replays.
    """
    timestamp = str(int(time.time() if now is None else now))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def signing_key(secret: SecretStr) -> bytes:
    """The HMAC key: a ``whsec_<base64>`` secret, as Standard Webhooks' libraries make and
    read them, is the bytes it encodes; any other secret is its own UTF-8."""
    value = secret.get_secret_value()
    if value.startswith(WHSEC_PREFIX):
        try:
            return base64.b64decode(value.removeprefix(WHSEC_PREFIX), validate=True)
        except binascii.Error:
            raise PermanentJobError(
                f"the {DISTRIBUTOR_WEBHOOK_SECRET!r} secret starts {WHSEC_PREFIX!r} but is not "
                "base64 after it"
            ) from None
    return value.encode()


class JobOrderEvents:
    """Sends the order jobs when an order is confirmed; the email goes to whoever placed it."""

    def __init__(self, jobs: Jobs) -> None:
        self._jobs = jobs

    async def order_confirmed(self, order: Order) -> None:
        sends: dict[str, dict[str, int | str]] = {
            NOTIFY_DISTRIBUTOR: {"order_id": order.id},
            RECORD_SALE: {"order_id": order.id},
        }
        if order.placed_by is not None:
            sends[SEND_CONFIRMATION] = {"order_id": order.id, "user_id": order.placed_by}
        try:
            # All three together, within one time budget: a slow Redis costs the order 1 s.
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await self._jobs.send_all(sends)
        except Exception as error:
            # The order is committed and stands. Sending in the order's own transaction (an
            # outbox) is part 20's; until then a lost send is logged, loudly. After a timeout
            # some may have gone: the log says which could not be confirmed.
            names = error.names if isinstance(error, JobsNotSentError) else sorted(sends)
            logger.error(
                "job not sent",
                exc_info=error,
                extra={
                    "jobs": names,
                    "order_id": order.id,
                    "timed_out": isinstance(error, TimeoutError),
                },
            )
