"""Problem details (RFC 9457): the one shape of every error response.

Every error, whatever raised it, reaches the client as ``application/problem+json``::

    {"type": "/problems/book_not_found", "title": "Book not found", "status": 404,
     "detail": "Book 7 does not exist.", "instance": "/books/7",
     "code": "book_not_found", "request_id": "4f1c..."}

``type`` is a relative URI built from the stable ``code``; ``GET /problems/{code}`` describes it,
so it resolves on every deployment. Validation failures add ``errors``, one entry per field.
Unexpected exceptions become a 500 that says nothing about the cause; the log has the details,
under the same request id.
"""

import inspect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar, Self

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shelfwise.platform.errors import (
    AuthenticationError,
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PreconditionFailedError,
    TooManyRequestsError,
    UnavailableError,
)
from shelfwise.platform.request_id import request_id_of

PROBLEM_MEDIA_TYPE = "application/problem+json"

logger = logging.getLogger(__name__)

# Each kind of domain error means the same thing to every HTTP client.
STATUS_BY_ERROR_KIND: tuple[tuple[type[DomainError], int], ...] = (
    (AuthenticationError, status.HTTP_401_UNAUTHORIZED),
    (ForbiddenError, status.HTTP_403_FORBIDDEN),
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ConflictError, status.HTTP_409_CONFLICT),
    (PreconditionFailedError, status.HTTP_412_PRECONDITION_FAILED),
    (InvalidInputError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (TooManyRequestsError, status.HTTP_429_TOO_MANY_REQUESTS),
    (UnavailableError, status.HTTP_503_SERVICE_UNAVAILABLE),
)


class FieldError(BaseModel):
    """One field that failed validation."""

    field: str  # where, as a dotted path: "body.price.amount", "query.limit"
    message: str
    code: str  # pydantic's stable error type, e.g. "decimal_parsing" or "missing"


class Problem(BaseModel):
    """An RFC 9457 problem document, with ShelfWise's extensions."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemResponse(JSONResponse):
    """A JSON response served with the problem media type."""

    media_type = PROBLEM_MEDIA_TYPE


@dataclass(frozen=True)
class ProblemType:
    """What one ``code`` means: the resource ``GET /problems/{code}`` returns."""

    code: str
    title: str
    status: int
    description: str

    @property
    def uri(self) -> str:
        """The problem's ``type``: relative, so it resolves against whichever host served it."""
        return f"/problems/{self.code}"

    @classmethod
    def of(cls, error: type[DomainError]) -> Self:
        """The problem type of a domain error class, described by its docstring."""
        return cls(
            code=error.code,
            title=error.title,
            status=status_for(error),
            description=_plain_text(inspect.getdoc(error)) or error.title,
        )

    @classmethod
    def of_http_status(cls, http_status: HTTPStatus) -> Self:
        """The problem type of a plain HTTP error, such as 405 Method Not Allowed."""
        return cls(
            code=http_status.name.lower(),
            title=http_status.phrase.capitalize(),
            status=http_status.value,
            description=f"{http_status.description}.",
        )


VALIDATION_FAILED = ProblemType(
    code="validation_failed",
    title="Validation failed",
    status=status.HTTP_422_UNPROCESSABLE_CONTENT,
    description="The path, query or body of the request does not match the API's schema, or "
    "the body is not valid JSON. `errors` lists every field that failed, and why.",
)
INTERNAL_ERROR = ProblemType(
    code="internal_error",
    title="Internal error",
    status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    description="The server failed unexpectedly. The response says nothing about the cause; "
    "quote its request_id when you report it.",
)


# Bodies are read whole (JSON, CSV): this bounds the memory and event-loop time one request
# can claim. The largest legitimate bodies, a 1,000-row CSV import or a 100-line order, fit.
MAX_BODY_BYTES = 1024 * 1024
PAYLOAD_TOO_LARGE = ProblemType.of_http_status(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
UNSUPPORTED_MEDIA_TYPE = ProblemType.of_http_status(HTTPStatus.UNSUPPORTED_MEDIA_TYPE)


class UnknownProblemTypeError(NotFoundError):
    """No problem type has the requested code."""

    code: ClassVar[str] = "unknown_problem_type"
    title: ClassVar[str] = "Unknown problem type"

    def __init__(self, code: str) -> None:
        super().__init__(f"There is no problem type {code!r}.")


class ProblemTypeRead(BaseModel):
    """A problem type as ``GET /problems/{code}`` returns it."""

    type: str
    code: str
    title: str
    status: int
    description: str

    @classmethod
    def from_problem_type(cls, problem_type: ProblemType) -> Self:
        """The JSON form of ``problem_type``."""
        return cls(
            type=problem_type.uri,
            code=problem_type.code,
            title=problem_type.title,
            status=problem_type.status,
            description=problem_type.description,
        )


def status_for(error: type[DomainError]) -> int:
    """The HTTP status of a domain error class: by its kind, else 400."""
    return next(
        (code for kind, code in STATUS_BY_ERROR_KIND if issubclass(error, kind)),
        status.HTTP_400_BAD_REQUEST,
    )


def find_problem_type(code: str) -> ProblemType | None:
    """The problem type with this code: a domain error's, the platform's own, or an HTTP one."""
    for error in _domain_error_classes():
        if error.__dict__.get("code") == code:  # the class that defines the code, not an heir
            return ProblemType.of(error)
    for problem_type in (VALIDATION_FAILED, INTERNAL_ERROR):
        if problem_type.code == code:
            return problem_type
    http_status = HTTPStatus.__members__.get(code.upper())
    if http_status is not None and http_status >= HTTPStatus.BAD_REQUEST:  # errors only
        return ProblemType.of_http_status(http_status)
    return None


def _domain_error_classes() -> list[type[DomainError]]:
    """``DomainError`` and every subclass imported so far, parents before children."""
    found: list[type[DomainError]] = []
    pending = [DomainError]
    while pending:
        error = pending.pop(0)
        found.append(error)
        pending.extend(error.__subclasses__())
    return found


def problem_code_of(scope: Scope) -> str | None:
    """The code of the problem the request in ``scope`` was answered with, if it was one."""
    code: str | None = scope.get("state", {}).get("problem_code")
    return code


def problem_responses(
    *errors: type[DomainError], takes_input: bool = True
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route, generated from the domain errors it can raise.

    Every route may also fail unexpectedly (500), and a route that ``takes_input`` may fail
    validation (422). Problem types that share a status share one response, whose description
    lists their codes.
    """
    problem_types = [ProblemType.of(error) for error in errors]
    if takes_input:
        problem_types += [VALIDATION_FAILED, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE]
    problem_types.append(INTERNAL_ERROR)
    by_status: dict[int, list[ProblemType]] = {}
    for problem_type in problem_types:
        by_status.setdefault(problem_type.status, []).append(problem_type)
    return {
        http_status: {
            "description": "; ".join(f"`{each.code}`: {each.title}" for each in same_status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for http_status, same_status in sorted(by_status.items())
    }


def problem_response(
    request: Request,
    problem_type: ProblemType,
    detail: str,
    *,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    """A response carrying one occurrence of ``problem_type``. Its code is kept on
    ``request.state.problem_code`` for the request's metrics and log line."""
    request.state.problem_code = problem_type.code
    problem = Problem(
        type=problem_type.uri,
        title=problem_type.title,
        status=problem_type.status,
        detail=detail,
        instance=request.url.path,
        code=problem_type.code,
        request_id=request_id_of(request),
        errors=list(errors) if errors is not None else None,
    )
    return ProblemResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        headers=headers,
    )


async def domain_error_response(request: Request, error: Exception) -> ProblemResponse:
    """A broken business rule, with the status its kind stands for."""
    if not isinstance(error, DomainError):  # registered for DomainError only
        raise error
    return domain_problem_response(request, error)


def domain_problem_response(request: Request, error: DomainError) -> ProblemResponse:
    """The problem for ``error``, with the headers its kind calls for."""
    headers: dict[str, str] = {}
    if isinstance(error, AuthenticationError):
        # RFC 6750: a 401 names the scheme that would authenticate the request.
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, UnavailableError | TooManyRequestsError):
        # RFC 9110 and RFC 6585: when to come back, so clients retry later rather than at once.
        headers["Retry-After"] = str(error.retry_after_seconds)
    return problem_response(request, ProblemType.of(type(error)), error.detail, headers=headers)


async def validation_error_response(request: Request, error: Exception) -> ProblemResponse:
    """A request that does not match the schema: 422 with one entry per failed field."""
    if not isinstance(error, RequestValidationError):  # registered for it only
        raise error
    wrong_media_type = _unsupported_media_type(request)
    if wrong_media_type is not None:
        return problem_response(request, UNSUPPORTED_MEDIA_TYPE, wrong_media_type)
    field_errors = [_field_error(each) for each in error.errors()]
    if any(each.code == "json_invalid" for each in field_errors):
        detail = "The request body is not valid JSON."
    else:
        detail = "The request does not match the schema; `errors` lists each field."
    return problem_response(request, VALIDATION_FAILED, detail, errors=field_errors)


async def require_declared_media_type(request: Request) -> None:
    """Refuse (415) a body whose Content-Type is not the one its route reads.

    An app-wide dependency, so it runs before the body is validated: FastAPI hands a body
    declared as anything but JSON to a text route as it is (a CSV import would import it).
    A body declared as JSON is parsed before any dependency runs; when that fails on a route
    that does not read JSON, ``validation_error_response`` asks the same question.
    """
    wrong_media_type = _unsupported_media_type(request)
    if wrong_media_type is not None:
        raise HTTPException(UNSUPPORTED_MEDIA_TYPE.status, wrong_media_type)


def _unsupported_media_type(request: Request) -> str | None:
    """Why the request's body is not of the type its route reads, or ``None`` if it is."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is None:
        return None
    expected = str(body_field.field_info.media_type)
    sent = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if sent == expected or (expected == "application/json" and sent.endswith("+json")):
        return None
    return f"This route reads {expected}; the request sent {sent or 'no Content-Type'}."


def _plain_text(docstring: str | None) -> str:
    # A docstring is wrapped at 100 columns and marks code reST-style; a client gets one line.
    return " ".join((docstring or "").split()).replace("``", "")


def _field_error(error: dict[str, Any]) -> FieldError:
    if error["type"] == "json_invalid":
        # The location holds a character position, not a field.
        position = error["loc"][-1]
        reason = error.get("ctx", {}).get("error", error["msg"])
        return FieldError(
            field="body", message=f"{reason} at character {position}.", code="json_invalid"
        )
    return FieldError(
        field=".".join(str(part) for part in error["loc"]),
        message=error["msg"],
        code=error["type"],
    )


async def http_error_response(request: Request, error: Exception) -> ProblemResponse:
    """An error raised by the web framework itself: no such route, method not allowed, ..."""
    if not isinstance(error, HTTPException):  # registered for HTTPException only
        raise error
    if isinstance(error.__cause__, UnicodeDecodeError):
        # FastAPI reports JSON that is not UTF-8 as a bare 400; it is malformed JSON like any
        # other, so it gets the documented answer for that.
        reason = FieldError(
            field="body", message="The body is not UTF-8 encoded.", code="json_invalid"
        )
        return problem_response(
            request, VALIDATION_FAILED, "The request body is not valid JSON.", errors=[reason]
        )
    http_status = HTTPStatus(error.status_code)
    if error.detail != http_status.phrase:
        detail = error.detail
    elif http_status is HTTPStatus.NOT_FOUND:
        detail = f"Nothing is served at {request.url.path}."
    elif http_status is HTTPStatus.METHOD_NOT_ALLOWED:
        detail = f"{request.method} is not allowed on {request.url.path}."
    else:
        detail = http_status.phrase
    headers = error.headers
    if http_status is HTTPStatus.METHOD_NOT_ALLOWED and (allowed := allowed_methods(request)):
        # Starlette lists the methods of the first route whose path matched; a path served by
        # several routes (GET and PUT /books/{book_id}/stock) allows the methods of them all.
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    return problem_response(
        request, ProblemType.of_http_status(http_status), detail, headers=headers
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method the API documents at the request's path; HEAD wherever GET is.

    Read from the OpenAPI paths: the route table itself is the framework's private business.
    """
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern, _, _ = compile_path(template)
        if pattern.match(request.url.path):
            methods |= {method.upper() for method in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


class UnhandledErrorMiddleware:
    """Turns an exception that no handler took into a 500 problem that discloses nothing.

    A pure ASGI middleware rather than an ``Exception`` handler: Starlette runs that handler in
    its outermost middleware, outside the request id middleware, and re-raises the exception
    afterwards. Here the response keeps its request id and the exception ends with us, logged
    once, with the request id attached to the log record.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        response_started = False

        async def send_and_track(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self._app(scope, receive, send_and_track)
        except Exception:
            request = Request(scope)
            # The request's id, tenant and trace come from context; the traceback with it.
            logger.exception(
                "unhandled error", extra={"method": request.method, "path": request.url.path}
            )
            if response_started:
                raise  # too late to answer with a problem; the server drops the connection
            detail = "The server failed unexpectedly. Quote the request id when you report it."
            await problem_response(request, INTERNAL_ERROR, detail)(scope, receive, send)


class BodySizeLimitMiddleware:
    """Answers 413 to a request body over ``max_bytes``, without reading more of it.

    FastAPI's own ``max_body_size`` answers a body declared too large in plain text, outside
    the problem shape, so the limit is enforced here, beside the other error paths: a declared
    length is refused at once; a streamed body is counted as it arrives.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        detail = f"A request body may be at most {self._max_bytes} bytes."
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            response = problem_response(Request(scope), PAYLOAD_TOO_LARGE, detail)
            await response(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self._max_bytes:
                # Raised inside the endpoint's body read, so the HTTP error handler answers.
                raise HTTPException(PAYLOAD_TOO_LARGE.status, detail)
            return message

        await self._app(scope, receive_within_limit, send)


async def describe_problem_type(code: str) -> ProblemTypeRead:
    """Describe the problem type that a problem's ``type`` (``/problems/{code}``) refers to."""
    problem_type = find_problem_type(code)
    if problem_type is None:
        raise UnknownProblemTypeError(code)
    return ProblemTypeRead.from_problem_type(problem_type)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error response of ``app`` a problem, and document them in its OpenAPI."""
    app.add_exception_handler(DomainError, domain_error_response)
    app.add_exception_handler(RequestValidationError, validation_error_response)
    app.add_exception_handler(HTTPException, http_error_response)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodySizeLimitMiddleware)
    app.add_api_route(
        "/problems/{code}",
        describe_problem_type,
        methods=["GET"],
        tags=["platform"],
        responses=problem_responses(UnknownProblemTypeError),
    )
    _add_problem_schemas_to_openapi(app)


def _add_problem_schemas_to_openapi(app: FastAPI) -> None:
    """Add ``Problem`` (and ``FieldError``) to the OpenAPI components.

    ``problem_responses`` refers to them with the problem media type; FastAPI would only
    register them under ``application/json``. Replacing ``app.openapi`` is FastAPI's documented
    way to extend the generated schema.
    """
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:  # generated and extended already
            return app.openapi_schema
        schema = generate_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
