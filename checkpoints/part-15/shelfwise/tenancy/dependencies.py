"""FastAPI dependencies for the per-tenant services the app's lifespan creates."""

from typing import Annotated

from fastapi import Depends, Request

from shelfwise.tenancy.cache import TenantCache
from shelfwise.tenancy.config import TenantConfig
from shelfwise.tenancy.flags import FeatureFlags


async def get_tenant_config(request: Request) -> TenantConfig:
    """The process's per-tenant settings resolver."""
    config: TenantConfig = request.app.state.tenant_config
    return config


async def get_feature_flags(request: Request) -> FeatureFlags:
    """The process's feature flags."""
    flags: FeatureFlags = request.app.state.feature_flags
    return flags


async def get_tenant_cache(request: Request) -> TenantCache:
    """The process's cache of tenants' data."""
    cache: TenantCache = request.app.state.tenant_cache
    return cache


TenantConfigDep = Annotated[TenantConfig, Depends(get_tenant_config)]
FeatureFlagsDep = Annotated[FeatureFlags, Depends(get_feature_flags)]
TenantCacheDep = Annotated[TenantCache, Depends(get_tenant_cache)]
