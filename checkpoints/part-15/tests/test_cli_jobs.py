"""The operator's dead-letter commands, on a real Redis: list, show, replay, purge; bad input
refused with one line and a non-zero exit status."""

import asyncio
import json
import uuid

import pytest
import redis
from pydantic import SecretStr
from taskiq import TaskiqMessage

from shelfwise.cli import main
from shelfwise.platform.jobs import ATTEMPT, DeadLetter, RedisDeadLetters, create_jobs
from shelfwise.platform.settings import JobSettings
from shelfwise.tenancy.jobs import TENANT_ID

TENANT = "6f1c0b8e-1d2a-4c3b-9e8f-0a1b2c3d4e5f"


def run(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:  # argparse exits on bad usage
        return int(exit_.code or 0)


@pytest.fixture
def jobs_settings(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> JobSettings:
    stream = f"test:jobs:{uuid.uuid4().hex}"
    monkeypatch.setenv("SHELFWISE_JOBS_REDIS_URL", redis_url)
    monkeypatch.setenv("SHELFWISE_JOBS_STREAM", stream)
    return JobSettings(redis_url=SecretStr(redis_url), stream=stream)


async def a_dead_letter(settings: JobSettings) -> str:
    """A job that failed its three attempts, as the middleware keeps it; returns its id."""
    jobs = create_jobs(settings, {})
    labels = {TENANT_ID: TENANT, ATTEMPT: "3"}
    message = TaskiqMessage(
        task_id="job-1",
        task_name="orders.record_sale",
        labels=labels,
        args=[],
        kwargs={"order_id": 7},
    )
    dead_letters = jobs.dead_letters
    assert isinstance(dead_letters, RedisDeadLetters)
    await dead_letters.add(
        DeadLetter(
            id="job-1",
            task_id="job-1",
            task_name="orders.record_sale",
            labels=labels,
            attempts=3,
            error="ConnectError: the database\ndid not answer",
            failed_at=0.0,
            message=jobs.broker.formatter.dumps(message).message.decode(),
        )
    )
    [letter] = await dead_letters.recent(1)
    await jobs.stop()
    return letter.id


def test_an_operator_reads_replays_and_purges_dead_letters(
    jobs_settings: JobSettings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    letter_id = asyncio.run(a_dead_letter(jobs_settings))

    assert run("jobs-dead-list") == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{letter_id}  orders.record_sale  tenant {TENANT}  3 attempt(s)")
    assert line.endswith("ConnectError: the database did not answer")  # one line per letter

    assert run("jobs-dead-show", letter_id) == 0
    shown = json.loads(capsys.readouterr().out)
    assert json.loads(shown["message"])["kwargs"] == {"order_id": 7}

    assert run("jobs-dead-replay", letter_id) == 0
    assert capsys.readouterr().out == "sent orders.record_sale (job-1) again\n"
    entries = redis.Redis.from_url(redis_url).xrange(jobs_settings.stream)
    assert entries is not None
    [(_, fields)] = entries
    assert fields is not None
    sent = json.loads(fields[b"data"])
    assert sent["task_name"] == "orders.record_sale"
    assert sent["labels"][ATTEMPT] == "1" and sent["labels"][TENANT_ID] == TENANT

    assert run("jobs-dead-list") == 0
    assert capsys.readouterr().out == "no dead letters\n"
    assert run("jobs-dead-replay", letter_id) == 1  # replayed once only
    assert "there is no dead letter" in capsys.readouterr().err

    asyncio.run(a_dead_letter(jobs_settings))
    assert run("jobs-dead-purge") == 0
    assert capsys.readouterr().out == "deleted 1 dead letter(s)\n"


@pytest.mark.parametrize(
    "argv",
    [
        ("jobs-dead-replay", "1; DEL shelfwise:jobs"),
        ("jobs-dead-show", "-"),
        ("jobs-dead-show", "1" * 21 + "-0"),
        ("jobs-dead-list", "--limit", "0"),
        ("jobs-dead-list", "--limit", "1001"),
        ("jobs-dead-list", "--limit", "\uff15"),  # a full-width 5
    ],
)
def test_bad_input_gets_one_line_and_exit_status_2(
    argv: tuple[str, ...], jobs_settings: JobSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(*argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_without_a_jobs_redis_the_commands_say_where_dead_letters_are(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SHELFWISE_JOBS_REDIS_URL", raising=False)
    assert run("jobs-dead-list") == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "set SHELFWISE_JOBS_REDIS_URL" in line


@pytest.mark.parametrize("url", ["notaurl", "", "http://127.0.0.1:6379/0"])
def test_a_url_that_is_not_redis_gets_one_line(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHELFWISE_JOBS_REDIS_URL", url)
    assert run("jobs-dead-list") == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "SHELFWISE_JOBS_REDIS_URL" in line


def test_a_redis_that_does_not_answer_gets_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHELFWISE_JOBS_REDIS_URL", "redis://127.0.0.1:1/0")
    assert run("jobs-dead-list") == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "the jobs' Redis did not answer" in line
