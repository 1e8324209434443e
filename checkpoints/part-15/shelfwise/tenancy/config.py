"""Per-tenant settings: each tenant's value, else the environment's, else the default.

A feature declares a setting once with ``tenant_setting``; the app reads it for the current
tenant through ``TenantConfig``, which says where each value came from (its provenance) and
caches a tenant's overrides for a short time, so a change made by an operator applies
without a restart: at once in the process that made it, within the TTL everywhere else.
"""

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from cachetools import TTLCache
from pydantic import JsonValue, TypeAdapter, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.platform.errors import InvalidInputError, NotFoundError
from shelfwise.platform.settings import SettingsError
from shelfwise.tenancy.context import current_tenant_id
from shelfwise.tenancy.models import TenantSetting

logger = logging.getLogger(__name__)

T = TypeVar("T")
Source = Literal["tenant", "environment", "default"]
# At most this many tenants' overrides are held in memory at once.
CACHED_TENANTS = 10_000


@dataclass(frozen=True)
class SettingSpec(Generic[T]):
    """A setting a tenant may override: its key, type (with bounds) and default."""

    key: str
    adapter: TypeAdapter[T]
    default: T
    description: str

    def validate(self, value: object) -> T:
        """``value`` (JSON) as the setting's type, or ``ValidationError``."""
        return self.adapter.validate_python(value)

    def as_json(self, value: T) -> JsonValue:
        """``value`` as stored and shown."""
        json: JsonValue = self.adapter.dump_python(value, mode="json")
        return json


SPECS: dict[str, SettingSpec[Any]] = {}


def tenant_setting(key: str, type_: Any, default: T, description: str) -> SettingSpec[T]:
    """Declare a per-tenant setting; features call this at import time."""
    spec = SettingSpec(key, TypeAdapter(type_), default, description)
    SPECS[key] = spec
    return spec


@dataclass(frozen=True)
class Resolved(Generic[T]):
    """A setting's value for one tenant, and which layer it came from."""

    key: str
    value: T
    source: Source


def describe(resolved: Resolved[Any]) -> str:
    """``key = <value as JSON>  (source)``: one line, as operators read it."""
    value = json.dumps(SPECS[resolved.key].as_json(resolved.value))
    return f"{resolved.key} = {value}  ({resolved.source})"


class UnknownSettingError(NotFoundError):
    """No setting has this key."""

    code = "unknown_setting"
    title = "Unknown setting"


class InvalidSettingError(InvalidInputError):
    """The value does not fit the setting's type or bounds."""

    code = "invalid_setting"
    title = "Invalid setting"


class TenantConfig:
    """Resolves settings for the current tenant: tenant → environment → default.

    One per process; it reads through the caller's session (the request's own), so resolving a
    setting never takes a second connection from the pool while the request holds one.
    """

    def __init__(
        self,
        environment: Mapping[str, JsonValue],
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._environment = {key: _checked(key, value) for key, value in environment.items()}
        self._overrides: TTLCache[UUID, dict[str, JsonValue]] = TTLCache(
            maxsize=CACHED_TENANTS, ttl=ttl_seconds, timer=clock
        )

    async def get(self, session: AsyncSession, spec: SettingSpec[T]) -> T:
        """The current tenant's value of ``spec``."""
        return (await self.resolve(session, spec)).value

    async def resolve(self, session: AsyncSession, spec: SettingSpec[T]) -> Resolved[T]:
        """The current tenant's value of ``spec``, with where it came from."""
        overrides = await self._tenant_overrides(session, current_tenant_id())
        if spec.key in overrides:
            try:
                return Resolved(spec.key, spec.validate(overrides[spec.key]), "tenant")
            except ValidationError:
                # Stored under an older definition of the setting: fall through, and say so.
                logger.warning("ignoring an invalid stored value of %s", spec.key)
        if spec.key in self._environment:
            return Resolved(spec.key, self._environment[spec.key], "environment")
        return Resolved(spec.key, spec.default, "default")

    async def explain(self, session: AsyncSession) -> list[Resolved[Any]]:
        """Every setting of the current tenant, sorted by key."""
        return [await self.resolve(session, SPECS[key]) for key in sorted(SPECS)]

    async def set(self, session: AsyncSession, key: str, value: JsonValue) -> Resolved[Any]:
        """Override ``key`` for the current tenant and commit; applies at once in this process."""
        spec = _spec(key)
        try:
            stored = spec.as_json(spec.validate(value))
        except ValidationError as error:
            raise InvalidSettingError(f"{key}: {_first_message(error)}") from None
        tenant_id = current_tenant_id()
        # merge: the row with this primary key is updated if it exists, else inserted.
        await session.merge(TenantSetting(tenant_id=tenant_id, key=key, value=stored))
        await session.commit()
        self.invalidate(tenant_id)
        return await self.resolve(session, spec)

    async def unset(self, session: AsyncSession, key: str) -> Resolved[Any]:
        """Remove the current tenant's override of ``key`` and commit."""
        spec = _spec(key)
        await session.execute(delete(TenantSetting).where(TenantSetting.key == key))
        await session.commit()
        self.invalidate(current_tenant_id())
        return await self.resolve(session, spec)

    def invalidate(self, tenant_id: UUID) -> None:
        """Forget what this process read of ``tenant_id``'s overrides."""
        self._overrides.pop(tenant_id, None)

    async def _tenant_overrides(
        self, session: AsyncSession, tenant_id: UUID
    ) -> dict[str, JsonValue]:
        cached = self._overrides.get(tenant_id)
        if cached is None:
            rows = await session.execute(select(TenantSetting.key, TenantSetting.value))
            cached = {key: value for key, value in rows}
            self._overrides[tenant_id] = cached
        return cached


def _spec(key: str) -> SettingSpec[Any]:
    if key not in SPECS:
        known = ", ".join(sorted(SPECS)) or "none"
        raise UnknownSettingError(f"There is no setting {key!r} (known: {known}).")
    return SPECS[key]


def _checked(key: str, value: JsonValue) -> Any:
    # The environment layer is validated when the app starts, not when a tenant first reads it.
    try:
        return _spec(key).validate(value)
    except (UnknownSettingError, ValidationError) as error:
        detail = error.detail if isinstance(error, UnknownSettingError) else _first_message(error)
        # A settings error: the CLI says it in one line, as it says any other bad variable.
        raise SettingsError(f"SHELFWISE_TENANT_DEFAULTS: {key}: {detail}") from None


def _first_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]
