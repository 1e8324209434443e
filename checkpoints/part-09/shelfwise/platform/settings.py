"""Application settings, read from the environment."""

import secrets

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration for one ShelfWise process.

    Every field can be overridden with an environment variable named ``SHELFWISE_<FIELD>``,
    e.g. ``SHELFWISE_DATABASE_URL``. The prefix keeps our variables apart from those of other
    programs running in the same environment.
    """

    model_config = SettingsConfigDict(env_prefix="SHELFWISE_")

    app_name: str = "ShelfWise"
    database_url: str = "sqlite+aiosqlite:///./shelfwise.db"
    # The tables' owner, on PostgreSQL: creates the schema and its row-level security
    # policies, while the app itself connects as database_url's role, which owns nothing.
    database_admin_url: str | None = None
    # Signs access tokens. Unset, each process draws its own: tokens then die with the
    # process and are not accepted by another, which is safe but fits only a single process.
    auth_secret_key: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))
    access_token_minutes: int = Field(default=60, ge=1, le=24 * 60)
