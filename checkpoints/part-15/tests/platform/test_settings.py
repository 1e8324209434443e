"""Settings: grouped, named after their variables, secrets masked, failures that name the
variable, and a production mode that refuses to start without its keys."""

import pytest
from pydantic import SecretStr

from shelfwise.platform.settings import Settings, SettingsError, load_settings

VARIABLES = (
    "SHELFWISE_APP_NAME",
    "SHELFWISE_ENVIRONMENT",
    "SHELFWISE_DATABASE_URL",
    "SHELFWISE_DATABASE_ADMIN_URL",
    "SHELFWISE_AUTH_SECRET_KEY",
    "SHELFWISE_AUTH_TOKEN_MINUTES",
    "SHELFWISE_SECRETS_KEYS",
    "SHELFWISE_TENANT_DEFAULTS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def test_defaults_run_a_laptop_on_sqlite() -> None:
    settings = Settings()

    assert settings.app_name == "ShelfWise"
    assert settings.environment == "development"
    assert settings.database.url.get_secret_value() == "sqlite+aiosqlite:///./shelfwise.db"
    assert settings.database.admin_url is None
    assert settings.auth.secret_key is None
    assert settings.secrets.keys == []


def test_each_group_reads_variables_named_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELFWISE_DATABASE_URL", "postgresql+asyncpg://app:pw@db/shelfwise")
    monkeypatch.setenv("SHELFWISE_AUTH_TOKEN_MINUTES", "15")
    monkeypatch.setenv("SHELFWISE_SECRETS_KEYS", '["k2", "k1"]')
    monkeypatch.setenv("SHELFWISE_TENANT_DEFAULTS", '{"orders.bulk_discount_tiers": []}')

    settings = Settings()

    assert settings.database.url.get_secret_value() == "postgresql+asyncpg://app:pw@db/shelfwise"
    assert settings.auth.token_minutes == 15
    assert [key.get_secret_value() for key in settings.secrets.keys] == ["k2", "k1"]
    assert settings.tenant_defaults == {"orders.bulk_discount_tiers": []}


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://someone-else/db")

    assert Settings().database.url.get_secret_value() == "sqlite+aiosqlite:///./shelfwise.db"


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELFWISE_DATABASE_URL", "postgresql+asyncpg://app:hunter2@db/x")
    monkeypatch.setenv("SHELFWISE_AUTH_SECRET_KEY", "s" * 40)

    shown = f"{Settings()!r} {Settings()} {Settings().model_dump()}"

    assert "hunter2" not in shown
    assert "s" * 40 not in shown


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SHELFWISE_AUTH_TOKEN_MINUTES", "0"),
        ("SHELFWISE_AUTH_TOKEN_MINUTES", "soon"),
        ("SHELFWISE_AUTH_SECRET_KEY", "too-short"),
        ("SHELFWISE_ENVIRONMENT", "staging"),
        ("SHELFWISE_SECRETS_KEYS", "not json"),
    ],
)
def test_a_bad_value_is_reported_with_its_variable_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert str(raised.value).startswith(f"{variable}: ")
    assert value not in str(raised.value).removeprefix(f"{variable}: ")


def test_production_refuses_to_start_without_its_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELFWISE_ENVIRONMENT", "production")

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert str(raised.value).splitlines() == [
        "SHELFWISE_AUTH_SECRET_KEY: must be set in production",
        "SHELFWISE_SECRETS_KEYS: must be set in production",
    ]
    keys = [SecretStr("k")]
    assert load_settings(auth={"secret_key": "x" * 32}, secrets={"keys": keys}).environment == (
        "production"
    )
