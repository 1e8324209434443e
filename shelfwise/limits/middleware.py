"""Each tenant's limits, applied before a request can wait for anything shared."""

import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shelfwise.identity.dependencies import bearer_token_of, verified_principal
from shelfwise.identity.errors import TokenRejectedError
from shelfwise.identity.tokens import Principal
from shelfwise.limits.plans import Outcome, TenantLimits
from shelfwise.platform.errors import TooManyRequestsError
from shelfwise.platform.problems import domain_problem_response
from shelfwise.platform.rate_limit import (
    COST_EXTENSION,
    Decision,
    RateLimitedError,
    TooManyConcurrentRequestsError,
    limit_fields,
)


class TenantLimitsMiddleware:
    """Pure ASGI middleware: a request made with a tenant's token holds one of the tenant's
    slots in this process and spends its route's cost of the tenant's quota, or is answered
    429 at once. Every counted response carries the ``RateLimit`` fields.

    It runs before admission control, so a tenant over its limits never takes a place in the
    queue every tenant shares: its refusals cost no slot, no routing and no database. Requests
    without a valid token pass untouched; ``authenticate`` refuses them as before.
    """

    def __init__(self, app: ASGIApp, *, service: FastAPI) -> None:
        self._app = app
        self._service = service  # the FastAPI app: its state and its routes
        # (method, path pattern, cost) of each route that costs more than one unit.
        self._costly_routes: list[tuple[str, re.Pattern[str], int]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits: TenantLimits | None = getattr(self._service.state, "tenant_limits", None)
        principal = self._principal(scope) if scope["type"] == "http" else None
        if limits is None or principal is None:
            await self._app(scope, receive, send)
            return
        policy = await limits.policy(principal.tenant_id)
        if policy is None:  # not known in time: fail open, as when Redis cannot count
            await self._app(scope, receive, send)
            return
        tenant = str(principal.tenant_id)
        with ExitStack() as held:
            try:
                held.enter_context(limits.caps.hold(tenant, policy.concurrent_requests))
            except TooManyConcurrentRequestsError as error:
                limits.decisions[policy.plan, "concurrency_limited", "local"] += 1
                await _refuse(error, None, scope, receive, send)
                return
            decision = await limits.limiter.take(tenant, policy.quota, self._cost(scope))
            outcome: Outcome = "allowed" if decision.allowed else "rate_limited"
            limits.decisions[policy.plan, outcome, decision.limiter] += 1
            if not decision.allowed:
                wait = decision.retry_after_seconds
                refusal = RateLimitedError(
                    f"This tenant used its {policy.quota.limit} requests per "
                    f"{policy.quota.window_seconds} s. Retry in {wait} s.",
                    retry_after_seconds=wait,
                )
                await _refuse(refusal, decision, scope, receive, send)
                return
            await self._app(scope, receive, _with_fields(send, decision))

    def _principal(self, scope: Scope) -> Principal | None:
        token = bearer_token_of(scope)
        if token is None:
            return None
        try:
            return verified_principal(scope, self._service.state.token_signer, token)
        except TokenRejectedError:
            return None

    def _cost(self, scope: Scope) -> int:
        if self._costly_routes is None:
            # From the API's schema, built once: the costs clients read are the ones applied.
            self._costly_routes = list(_costly_routes(self._service.openapi()))
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        for route_method, pattern, units in self._costly_routes:
            if method == route_method and pattern.fullmatch(scope["path"]):
                return units
        return 1


def _costly_routes(schema: dict[str, Any]) -> Iterator[tuple[str, re.Pattern[str], int]]:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            units = operation.get(COST_EXTENSION, 1)
            if units > 1:
                yield method.upper(), compile_path(path)[0], units


def _with_fields(send: Send, decision: Decision) -> Send:
    fields = limit_fields(decision).items()
    encoded = [(name.lower().encode(), value.encode()) for name, value in fields]

    async def send_with_fields(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *encoded]
        await send(message)

    return send_with_fields


async def _refuse(
    error: TooManyRequestsError,
    decision: Decision | None,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    response = domain_problem_response(Request(scope), error)
    await response(scope, receive, send if decision is None else _with_fields(send, decision))
