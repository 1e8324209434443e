"""The jobs that follow an order, run by the app's own (in-process) broker: the email reaches
a real SMTP server, the webhook a real HTTP server, and each runs for its own tenant only."""

import asyncio
import base64
import contextvars
import email
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select

from shelfwise.main import create_app
from shelfwise.orders.jobs import (
    DISTRIBUTOR_WEBHOOK_SECRET,
    DISTRIBUTOR_WEBHOOK_URL,
    RECORD_SALE,
    SEND_CONFIRMATION,
    SEND_TIMEOUT_SECONDS,
)
from shelfwise.orders.models import BookSale
from shelfwise.platform.jobs import Jobs
from shelfwise.platform.settings import (
    JobSettings,
    MailSettings,
    SecretsSettings,
    Settings,
)
from shelfwise.tenancy.jobs import MissingTenantError
from tests.conftest import client_for
from tests.factories import Tenants
from tests.test_api import two_stocked_books

WAIT_SECONDS = 10
WEBHOOK_SECRET = "whsec-test-only"


def free_port() -> int:
    # aiosmtpd's Controller cannot take port 0: it connects to its own port to check it is up.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


class Distributor:
    """A distributor's HTTP endpoint: answers each request with the next status given."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        fields = (line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
        headers = {name.strip().lower(): value.strip() for name, value in fields}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def distributor() -> AsyncIterator[tuple[Distributor, str]]:
    receiver = Distributor([])
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield receiver, f"http://127.0.0.1:{port}/orders"


@pytest.fixture
async def job_app(
    app_settings: Settings, tenants: Tenants, inbox: tuple[Inbox, int]
) -> AsyncIterator[FastAPI]:
    settings = app_settings.model_copy(
        update={
            "mail": MailSettings(smtp_host="127.0.0.1", smtp_port=inbox[1]),
            "secrets": SecretsSettings(keys=[SecretStr(Fernet.generate_key().decode())]),
            "jobs": JobSettings(max_attempts=3, retry_base_seconds=0.01, retry_cap_seconds=0.05),
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():
            await asyncio.sleep(0.01)


async def place_order(app: FastAPI, tenants: Tenants, *, tenant: str = "a") -> int:
    """An order of two books by the tenant's user; returns its id once its jobs have run."""
    async with client_for(app, getattr(tenants, tenant)) as client:
        earthsea, kindred = await two_stocked_books(client)
        response = await client.post(
            "/orders",
            json={
                "lines": [
                    {"book_id": earthsea, "quantity": 2},
                    {"book_id": kindred, "quantity": 1},
                ]
            },
        )
    assert response.status_code == 201, response.text
    await app.state.order_saga.settled()  # the saga confirms it, and sends the jobs
    await app.state.jobs.settled()
    order_id: int = response.json()["id"]
    return order_id


async def use_webhook(app: FastAPI, url: str, *, secret: str | None = WEBHOOK_SECRET) -> None:
    """As the test's tenant (A): send orders to ``url``, signed with ``secret``."""
    async with app.state.database.session() as session:
        await app.state.tenant_config.set(session, DISTRIBUTOR_WEBHOOK_URL.key, url)
        if secret is not None:
            await app.state.tenant_secrets.set(
                session, DISTRIBUTOR_WEBHOOK_SECRET, SecretStr(secret)
            )


async def test_the_buyer_gets_one_confirmation_that_a_repeat_run_sends_as_the_same_message(
    job_app: FastAPI, tenants: Tenants, inbox: tuple[Inbox, int]
) -> None:
    messages = inbox[0].messages
    order_id = await place_order(job_app, tenants)
    await eventually(lambda: len(messages) == 1)

    first = messages[0]
    assert first["To"] == tenants.a.email
    assert first["Subject"] == f"Order {order_id} confirmed"
    body = first.get_payload()
    assert isinstance(body, str)
    assert "2 x book" in body and "1 x book" in body
    assert "Total: 33.99 USD" in body  # 2 x 12.50 + 8.99, computed here

    jobs: Jobs = job_app.state.jobs
    await jobs.send(SEND_CONFIRMATION, order_id=order_id, user_id=tenants.a.user_id)
    await eventually(lambda: len(messages) == 2)
    assert messages[1]["Message-ID"] == first["Message-ID"]
    assert str(order_id) in first["Message-ID"]


def signature(secret: str | bytes, headers: dict[str, str], body: bytes) -> str:
    """The Standard Webhooks signature, computed here as a distributor would check it."""
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


async def test_the_distributor_gets_the_tenants_orders_signed_with_its_secret_and_no_other(
    job_app: FastAPI, tenants: Tenants, distributor: tuple[Distributor, str]
) -> None:
    receiver, url = distributor
    await use_webhook(job_app, url)

    theirs = await place_order(job_app, tenants, tenant="b")  # B has no webhook
    mine = await place_order(job_app, tenants)
    await eventually(lambda: len(receiver.requests) == 1)
    await asyncio.sleep(0.1)  # and no second one arrives

    [(headers, body)] = receiver.requests
    assert json.loads(body)["order"]["id"] == mine != theirs
    assert headers["webhook-signature"] == signature(WEBHOOK_SECRET, headers, body)
    assert headers["webhook-signature"] != signature("another secret", headers, body)
    assert str(tenants.a.id) in headers["webhook-id"]


async def test_a_distributor_that_fails_gets_the_same_message_again(
    job_app: FastAPI, tenants: Tenants, distributor: tuple[Distributor, str]
) -> None:
    receiver, url = distributor
    receiver.statuses.extend([503, 500])
    await use_webhook(job_app, url)

    await place_order(job_app, tenants)
    await eventually(lambda: len(receiver.requests) == 3)

    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    assert len(ids) == 1
    assert await job_app.state.jobs.dead_letters.recent(10) == []


async def test_a_webhook_without_its_secret_is_never_sent_unsigned(
    job_app: FastAPI, tenants: Tenants, distributor: tuple[Distributor, str]
) -> None:
    receiver, url = distributor
    await use_webhook(job_app, url, secret=None)

    await place_order(job_app, tenants)
    jobs: Jobs = job_app.state.jobs
    [letter] = await jobs.dead_letters.recent(10)
    assert letter.attempts == 1
    assert DISTRIBUTOR_WEBHOOK_SECRET in letter.error
    assert receiver.requests == []


async def sales(app: FastAPI) -> int:
    async with app.state.database.session() as session:
        count: int = await session.scalar(select(func.count()).select_from(BookSale))
        return count


async def test_a_sale_is_recorded_once_however_often_its_job_runs(
    job_app: FastAPI, tenants: Tenants
) -> None:
    order_id = await place_order(job_app, tenants)
    assert await sales(job_app) == 2  # two books on the order

    jobs: Jobs = job_app.state.jobs
    for _ in range(3):
        await jobs.send(RECORD_SALE, order_id=order_id)
    await jobs.settled()
    assert await sales(job_app) == 2
    assert await jobs.dead_letters.recent(10) == []


async def outside_any_tenant(work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` in a fresh context: no tenant, as in a worker's own loop."""
    await asyncio.create_task(work(), context=contextvars.Context())  # type: ignore[arg-type]


async def test_a_job_sent_without_a_tenant_runs_for_no_one(
    job_app: FastAPI, tenants: Tenants, inbox: tuple[Inbox, int]
) -> None:
    order_id = await place_order(job_app, tenants)
    await eventually(lambda: len(inbox[0].messages) == 1)
    jobs: Jobs = job_app.state.jobs

    async def send() -> None:
        await jobs.send(SEND_CONFIRMATION, order_id=order_id, user_id=tenants.a.user_id)
        await jobs.settled()

    await outside_any_tenant(send)

    [letter] = await jobs.dead_letters.recent(10)
    assert letter.error.startswith(MissingTenantError.__name__)
    assert letter.attempts == 1
    assert len(inbox[0].messages) == 1


async def test_a_whsec_secret_signs_with_the_bytes_it_encodes(
    job_app: FastAPI, tenants: Tenants, distributor: tuple[Distributor, str]
) -> None:
    receiver, url = distributor
    key = bytes(range(24))  # as a Standard Webhooks library would generate one
    await use_webhook(job_app, url, secret="whsec_" + base64.b64encode(key).decode())

    await place_order(job_app, tenants)
    await eventually(lambda: len(receiver.requests) == 1)

    [(headers, body)] = receiver.requests
    assert headers["webhook-signature"] == signature(key, headers, body)


async def test_a_confirmation_waits_at_most_one_budget_for_a_queue_that_hangs(
    job_app: FastAPI, tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hangs(sends: object) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(job_app.state.jobs, "send_all", hangs)
    async with client_for(job_app, tenants.a) as client:
        earthsea, _ = await two_stocked_books(client)
        response = await client.post(
            "/orders", json={"lines": [{"book_id": earthsea, "quantity": 1}]}
        )
        started = time.monotonic()
        await job_app.state.order_saga.settled()  # the saga confirms, then sends the jobs
        waited = time.monotonic() - started
        order = await client.get(response.headers["location"])
    assert order.json()["status"] == "confirmed"  # the order stands
    # One budget for the three sends together: one after another, they would take 3 s.
    assert SEND_TIMEOUT_SECONDS <= waited < 2 * SEND_TIMEOUT_SECONDS


async def test_a_job_naming_another_tenants_user_mails_no_one(
    job_app: FastAPI, tenants: Tenants, inbox: tuple[Inbox, int]
) -> None:
    order_id = await place_order(job_app, tenants)
    await eventually(lambda: len(inbox[0].messages) == 1)
    jobs: Jobs = job_app.state.jobs

    await jobs.send(SEND_CONFIRMATION, order_id=order_id, user_id=tenants.b.user_id)
    await jobs.settled()

    [letter] = await jobs.dead_letters.recent(10)
    assert "not this tenant's" in letter.error
    assert len(inbox[0].messages) == 1


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://distributor.example/orders", True),
        ("http://127.0.0.1:8080/orders", True),
        ("http://distributor.example/orders", False),  # the order, in clear
        ("ftp://distributor.example/orders", False),
        ("https://distributor.example/" + "a" * 2000, False),
    ],
)
def test_a_webhook_url_is_https_or_on_this_machine(url: str, accepted: bool) -> None:
    try:
        DISTRIBUTOR_WEBHOOK_URL.validate(url)
    except ValidationError:
        assert not accepted
    else:
        assert accepted
