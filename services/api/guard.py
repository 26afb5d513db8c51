"""What every API request passes before its route runs: token, parameters, body size, strings.

``GuardedRoute`` is the route class of every API router. Its handler runs before FastAPI reads
the body, in this order:

1. the bearer token is checked against the route's scope (``auth.authenticate``), so an
   unauthenticated client cannot make the API read, buffer or parse anything;
2. path and query parameters are checked for NUL, control characters and unpaired
   surrogates (422 naming the parameter);
3. the body is bounded while it streams: ``max_json_bytes`` for routes taking a JSON model,
   ``max_upload_bytes`` for the raw uploads; an announced Content-Length over the limit is
   refused before a byte is read, a chunked body as soon as it passes the limit (413);
4. a JSON body is parsed once (FastAPI reuses the parse) and every string in it, keys
   included, is checked the same way; free text may hold tabs and newlines.

Why a route class rather than a middleware or a dependency: dependencies run after FastAPI
has read and parsed the body, and a middleware would have to route the request itself to know
the scope and the parameter names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import Message

from contracts.text import TEXT_WHITESPACE, bad_character
from services.api.auth import authenticate
from services.api.errors import ApiError, Invalid

__all__ = ["GuardedRoute", "TooLarge", "string_problems"]

#: at most this many problems are listed in one 422
_MAX_PROBLEMS = 20


class TooLarge(ApiError):
    """The request body is over the route's limit (HTTP 413)."""

    status = 413


def _where(loc: list[str | int]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def string_problems(value: Any) -> list[str]:
    """Every string of a parsed JSON document (keys included) holding a refused character,
    as ``field 'a.b.0': ...`` lines. Iterative, so a deep document cannot exhaust the stack."""
    problems: list[str] = []
    todo: list[tuple[Any, list[str | int]]] = [(value, [])]
    while todo and len(problems) < _MAX_PROBLEMS:
        item, loc = todo.pop()
        if isinstance(item, str):
            if (bad := bad_character(item, allow=TEXT_WHITESPACE)) is not None:
                problems.append(f"field {_where(loc)!r}: holds {bad}; remove it")
        elif isinstance(item, dict):
            for key, sub in item.items():
                if (bad := bad_character(key)) is not None:
                    problems.append(f"field {_where(loc)!r}: a key holds {bad}; rename it")
                todo.append((sub, [*loc, key]))
        elif isinstance(item, list):
            todo.extend((sub, [*loc, i]) for i, sub in enumerate(item))
    return sorted(problems)


def _parameter_problems(request: Request) -> list[str]:
    problems = []
    for name, value in request.path_params.items():
        if isinstance(value, str) and (bad := bad_character(value)) is not None:
            problems.append(f"path parameter {name!r}: holds {bad}; remove it")
    for name, value in request.query_params.multi_items():
        for what, text in (("name", name), ("value", value)):
            if (bad := bad_character(text)) is not None:
                problems.append(f"query parameter {name!r}: its {what} holds {bad}; remove it")
    return problems


def _bounded(request: Request, limit: int) -> Request:
    """``request`` whose body stream raises ``TooLarge`` once more than ``limit`` bytes came."""
    announced = request.headers.get("content-length")
    if announced is not None:
        try:
            size = int(announced)
        except ValueError:
            raise ApiError(f"Content-Length {announced!r} is not a number of bytes") from None
        if size > limit:
            raise TooLarge(
                f"the request body of {size} bytes exceeds this route's limit of {limit} bytes; "
                "send less (large data belongs in a datastore upload)"
            )
    receive = request.receive
    received = 0

    async def bounded_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise TooLarge(
                    f"the request body exceeds this route's limit of {limit} bytes; send less "
                    "(large data belongs in a datastore upload)"
                )
        return message

    return Request(request.scope, bounded_receive)


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    return kind == "application/json" or kind.endswith("+json")


class GuardedRoute(APIRoute):
    """An API route whose requests are authenticated, bounded and checked before FastAPI
    reads the body (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_json = self.body_field is not None

        async def guarded(request: Request) -> Response:
            await authenticate(request, self.path)
            if problems := _parameter_problems(request):
                raise Invalid(problems)
            settings = request.app.state.ctx.settings
            limit = settings.max_json_bytes if takes_json else settings.max_upload_bytes
            request = _bounded(request, limit)
            if takes_json and _is_json(request):
                try:
                    document = await request.json()  # cached: FastAPI's read reuses it
                except RecursionError:
                    raise Invalid(["body: JSON nested too deeply; flatten the document"]) from None
                except (json.JSONDecodeError, UnicodeDecodeError):
                    document = None  # FastAPI answers with its own 422 for malformed JSON
                if problems := string_problems(document):
                    raise Invalid(problems)
            return await handler(request)

        return guarded
