"""Each tenant's limits, applied before a request can wait for anything shared."""

import logging
import math
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shelfwise.identity.dependencies import bearer_token_of, verified_principal
from shelfwise.identity.errors import TokenRejectedError
from shelfwise.identity.tokens import Principal
from shelfwise.limits.errors import RateLimitedError, TooManyConcurrentRequestsError
from shelfwise.limits.plans import PROVISIONAL_CAP, Outcome, TenantLimits
from shelfwise.platform.errors import TooManyRequestsError
from shelfwise.platform.logs import bind_request_fields
from shelfwise.platform.problems import domain_problem_response
from shelfwise.platform.rate_limit import COST_EXTENSION, CapReachedError, Decision

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Operation:
    """One operation of the API's schema, as the limits see it."""

    method: str
    pattern: re.Pattern[str]
    cost: int
    public: bool  # declares no security: it acts for no tenant


class TenantLimitsMiddleware:
    """Pure ASGI middleware: a request made with a tenant's token, to any route that acts for a
    tenant, holds one of the tenant's slots in this process and spends the route's cost of the
    tenant's quota, or is answered 429 at once. Every counted response carries the
    ``RateLimit`` fields.

    It runs before admission control, so a tenant over its limits never takes a place in the
    queue every tenant shares: its refusals cost no slot, no routing and no database. Requests
    without a valid token pass untouched, and ``authenticate`` refuses them as before; so do
    the public routes (logging in, the problem types) and the paths in ``exempt`` (probes).
    """

    def __init__(self, app: ASGIApp, *, api: FastAPI, exempt: frozenset[str]) -> None:
        self._app = app
        self._api = api  # the FastAPI app: its state, and its schema
        self._exempt = exempt
        self._operations: list[_Operation] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exempt:
            await self._app(scope, receive, send)
            return
        limits: TenantLimits | None = getattr(self._api.state, "tenant_limits", None)
        principal = self._principal(scope)
        operation = self._operation(scope)
        if limits is None or principal is None or (operation is not None and operation.public):
            await self._app(scope, receive, send)
            return
        # Known from here on: a refused request's access line and span say whose it was.
        bind_request_fields(tenant_id=str(principal.tenant_id), user_id=principal.user_id)
        with ExitStack() as held:
            try:
                refusal = await self._decide(limits, principal, operation, held)
            except Exception:
                # A bug or an answer nobody expected must not fail every tenant's requests:
                # the request goes through unlimited, and the failure is logged and counted.
                limits.errors += 1
                logger.exception("limits not applied: deciding failed")
                refusal = None
                held.close()
            if isinstance(refusal, TooManyRequestsError):
                await _refuse(refusal, scope, receive, send)
            elif isinstance(refusal, Decision):
                await self._app(scope, receive, _with_fields(send, refusal))
            else:
                await self._app(scope, receive, send)

    async def _decide(
        self,
        limits: TenantLimits,
        principal: Principal,
        operation: _Operation | None,
        held: ExitStack,
    ) -> TooManyRequestsError | Decision | None:
        """A refusal to answer with, the decision to admit with, or ``None``: admitted,
        uncounted (the tenant's policy is not known yet). Takes a slot into ``held``."""
        tenant = str(principal.tenant_id)
        policy = await limits.policy(principal.tenant_id)
        cap = policy.concurrent_requests if policy is not None else PROVISIONAL_CAP
        try:
            held.enter_context(limits.caps.hold(tenant, cap))
        except CapReachedError:
            if policy is not None:
                limits.decisions[policy.plan, "concurrency_limited", "local"] += 1
            return TooManyConcurrentRequestsError(
                f"At most {cap} requests of this tenant may run at once. Retry in 1 s.",
                retry_after_seconds=1,
            )
        if policy is None:  # not known in time: the quota fails open, as without Redis
            return None
        cost = operation.cost if operation is not None else 1
        decision = await limits.limiter.take(tenant, policy.quotas, cost)
        outcome: Outcome = "allowed" if decision.allowed else "rate_limited"
        limits.decisions[policy.plan, outcome, decision.counted_by] += 1
        if decision.allowed:
            return decision
        full = " and ".join(
            f"{usage.quota.limit} units a {usage.quota.name} ({usage.remaining} left)"
            for usage in decision.usages
            if usage.wait_seconds
        )
        return RateLimitedError(
            f"This request costs {cost} units, more than this tenant's quota of {full} "
            f"allows now. Retry in {decision.retry_after_seconds} s.",
            decision,
        )

    def _principal(self, scope: Scope) -> Principal | None:
        token = bearer_token_of(scope)
        if token is None:
            return None
        try:
            return verified_principal(scope, self._api.state.token_signer, token)
        except TokenRejectedError:
            return None

    def _operation(self, scope: Scope) -> _Operation | None:
        """The schema's operation for the request, if any matches it."""
        if self._operations is None:
            # From the API's schema, built once: the costs clients read are the ones applied.
            self._operations = list(_operations(self._api.openapi()))
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        for operation in self._operations:
            if operation.method == method and operation.pattern.fullmatch(path):
                return operation
        return None


def _operations(schema: dict[str, Any]) -> Iterator[_Operation]:
    for path, operations in schema["paths"].items():
        pattern = compile_path(path)[0]
        for method, operation in operations.items():
            cost = operation.get(COST_EXTENSION, 1)
            yield _Operation(method.upper(), pattern, cost, public=not operation.get("security"))


def limit_fields(decision: Decision) -> dict[str, str]:
    """The ``RateLimit-Policy`` and ``RateLimit`` fields (draft-ietf-httpapi-ratelimit-headers)
    for ``decision``, one item per quota: the quota and its window; what is left, and ``t``:
    the seconds until the quota's current window ends, or, for a quota that refused the
    request, until the request fits it (never later than ``Retry-After``)."""
    policies, states = [], []
    for usage in decision.usages:
        quota = usage.quota
        reset = max(1, math.ceil(usage.wait_seconds)) if usage.wait_seconds else usage.reset_seconds
        policies.append(f'"{quota.name}";q={quota.limit};w={quota.window_seconds}')
        states.append(f'"{quota.name}";r={usage.remaining};t={reset}')
    return {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}


def _with_fields(send: Send, decision: Decision) -> Send:
    fields = limit_fields(decision).items()
    encoded = [(name.lower().encode(), value.encode()) for name, value in fields]

    async def send_with_fields(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *encoded]
        await send(message)

    return send_with_fields


async def _refuse(error: TooManyRequestsError, scope: Scope, receive: Receive, send: Send) -> None:
    response = domain_problem_response(Request(scope), error)
    if isinstance(error, RateLimitedError):
        send = _with_fields(send, error.decision)
    await response(scope, receive, send)
