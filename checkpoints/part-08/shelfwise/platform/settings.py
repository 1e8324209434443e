"""Application settings, read from the environment."""

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
