"""Reading a JSON request body at the HTTP edge without letting its bytes reach a parser that can crash.

aiohttp's ``request.json()``/``text()`` raise LookupError for an unknown ``charset`` and ``json.loads``
raises RecursionError on deep nesting, both before any token is checked
(docs/dependency-notes.md#the-http-edge-aiohttp). So the body is read here with every limit applied
*before* parsing: media type and charset, size, nesting depth, strict UTF-8, then JSON without NaN. Each refusal is an ``EdgeRefusal`` carrying its 4xx status
and a sentence for the caller; nothing here knows which channel the body is for.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Mapping

from aiohttp import web
from aiohttp.http_exceptions import PayloadEncodingError

MAX_BODY_BYTES = 256 * 1024
"""Teams refuses messages over about 100 KB; an activity carrying a card's inputs is far smaller."""

MAX_JSON_DEPTH = 32
"""Activities nest about six levels; a card's submitted data a few more."""

JSON_MEDIA_TYPE = "application/json"

BODY_READ_SECONDS = 30.0
"""How long a client may take to send its body once its headers are in. The Bot Connector sends it at
once; a client that sends part of it and then goes quiet (slowloris) would otherwise hold a connection
and a handler for ever: aiohttp's keep-alive timeout only closes idle connections, never one whose
request is being read."""

STORE_RETRY_AFTER_SECONDS = 60
"""The Retry-After of a 503 while the store cannot write: a full disk or a damaged ledger needs a person."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class EdgeRefusal(Exception):
    """A request refused before it reached any handler: the status and the reason to send back."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return web.json_response({"error": self.message}, status=self.status, headers=dict(self.headers))


def media_type(header: str) -> tuple[str, dict[str, str]]:
    """``Content-Type`` as (lower-case media type, lower-case parameter names -> unquoted values).

    A plain split instead of the email-header parser: the header may hold any bytes a client sent.
    """
    kind, *raw_parameters = header.split(";")
    parameters: dict[str, str] = {}
    for raw in raw_parameters:
        name, _, value = raw.partition("=")
        parameters[name.strip().lower()] = value.strip().strip('"').strip()
    return kind.strip().lower(), parameters


def nesting_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether the JSON text nests arrays/objects deeper than ``limit``, decided without parsing it.

    Strings are blanked first so brackets inside them do not count; malformed text is left to the parser.
    """
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b'""', body)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json_object(request: web.Request, read_seconds: float = BODY_READ_SECONDS) -> dict[str, Any]:
    """The request's body as a JSON object, or EdgeRefusal (415, 413, 408 or 400) saying what is wrong with it."""
    kind, parameters = media_type(request.headers.get("Content-Type", ""))
    if kind != JSON_MEDIA_TYPE:
        raise EdgeRefusal(415, f"expected Content-Type: {JSON_MEDIA_TYPE}")
    charset = parameters.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise EdgeRefusal(415, "only the UTF-8 charset is accepted")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise EdgeRefusal(413, f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        async with asyncio.timeout(read_seconds):
            body = await request.read()  # stops at the application's client_max_size (MAX_BODY_BYTES)
    except web.HTTPRequestEntityTooLarge:
        raise EdgeRefusal(413, f"body is larger than {MAX_BODY_BYTES} bytes") from None
    except (ConnectionResetError, PayloadEncodingError):  # the client went away, or broke off its body
        raise EdgeRefusal(400, "the body ended before it was complete") from None
    except TimeoutError:
        raise EdgeRefusal(408, f"the body did not arrive within {read_seconds:g} seconds",
                          {"Connection": "close"}) from None
    if len(body) > MAX_BODY_BYTES:
        raise EdgeRefusal(413, f"body is larger than {MAX_BODY_BYTES} bytes")
    if nesting_depth_exceeds(body, MAX_JSON_DEPTH):
        raise EdgeRefusal(400, f"body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        parsed = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise EdgeRefusal(400, "body is not valid UTF-8") from None
    except (ValueError, RecursionError) as bad:  # JSONDecodeError, an over-long integer, NaN
        raise EdgeRefusal(400, f"body is not valid JSON: {str(bad)[:200]}") from None
    if not isinstance(parsed, dict):
        raise EdgeRefusal(400, "body is not a JSON object")
    return parsed
