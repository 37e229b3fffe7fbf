"""``local.http_request``: send one HTTP request from the console host.

It follows the reference agent's ``http_request`` (reference 004): the same
payload and result shapes (headers as single-key maps, a text or base64 body),
so an operator sees the same result whether it ran here or on a remote agent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from app.core.errors import ValidationError
from app.core.payload import Field, Schema
from app.engine.kinds.base import HOST_TARGETS, RunContext, TaskKind

if TYPE_CHECKING:  # imported by run(): httpx costs ~80 ms of every start-up otherwise
    import httpx

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class HttpRequestError(Exception):
    """The HTTP request did not get a response (refused, reset, DNS, timeout)."""


class LocalHttpRequestKind(TaskKind):
    name = "local.http_request"
    title = "HTTP request from this host"
    description = "Send one HTTP request from the console host and record the response."
    targets = HOST_TARGETS
    schema = Schema((
        Field("url", "str", required=True, max_length=8192, help="http:// or https:// URL."),
        Field("method", "str", default="GET", choices=HTTP_METHODS),
        Field("headers", "json", help="Request headers, {\"Name\": \"value\"}."),
        Field("body", "str", help="Request body as text (UTF-8)."),
        Field("body_base64", "str", help="Request body as base64 (binary); not with body."),
        Field("timeout_s", "float", default=30.0, min=0.1, max=3600.0,
              help="Give up when the whole exchange takes longer."),
        Field("max_body_bytes", "int", default=1024 * 1024, min=0, max=64 * 1024 * 1024,
              help="Keep at most this many bytes of the response body."),
        Field("follow_redirects", "bool", default=False),
    ))

    def validate(self, payload: Any) -> dict[str, Any]:
        if isinstance(payload, dict) and isinstance(payload.get("method"), str):
            payload = {**payload, "method": payload["method"].strip().upper()}
        out = super().validate(payload)
        parts = urlsplit(out["url"].strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(
                "payload field 'url' must be an http:// or https:// URL with a host", field="url"
            )
        out["url"] = out["url"].strip()
        headers = out.get("headers")
        if headers is not None and not _valid_headers(headers):
            raise ValidationError(
                "payload field 'headers' must map header names to single-line strings",
                field="headers",
            )
        if out.get("body") is not None and out.get("body_base64") is not None:
            raise ValidationError(
                "payload fields 'body' and 'body_base64' are mutually exclusive",
                field="body_base64",
            )
        if out.get("body_base64") is not None:
            try:
                base64.b64decode(out["body_base64"], validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError(
                    "payload field 'body_base64' is not valid base64", field="body_base64"
                ) from None
        return out

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        url, timeout = payload["url"], payload["timeout_s"]
        content: bytes | None = None
        if payload.get("body") is not None:
            content = payload["body"].encode()
        elif payload.get("body_base64") is not None:
            content = base64.b64decode(payload["body_base64"])
        try:
            async with asyncio.timeout(timeout), httpx.AsyncClient(
                timeout=timeout, follow_redirects=payload["follow_redirects"]
            ) as client, client.stream(
                payload["method"], url, headers=payload.get("headers"), content=content
            ) as response:
                body, truncated = await _read_body(response, payload["max_body_bytes"])
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise HttpRequestError(f"{payload['method']} {url}: no response within "
                                   f"{timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise HttpRequestError(f"{payload['method']} {url}: {type(exc).__name__}: {exc}") \
                from exc
        return _http_result(response, body, truncated)


def _valid_headers(headers: Any) -> bool:
    return isinstance(headers, dict) and all(
        isinstance(k, str) and HEADER_NAME_RE.match(k) and isinstance(v, str)
        and "\r" not in v and "\n" not in v
        for k, v in headers.items()
    )


async def _read_body(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of the (decoded) body; say whether more was left."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        room = limit - len(data)
        if len(chunk) > room:
            data += chunk[:room]
            return bytes(data), True
        data += chunk
    return bytes(data), False


def _http_result(response: httpx.Response, body: bytes, truncated: bool) -> dict[str, Any]:
    """The reference's ``http_request`` result: headers as single-key maps, duplicates kept."""
    encoding = response.headers.encoding
    result: dict[str, Any] = {
        "status": response.status_code,
        "headers": [{k.decode(encoding): v.decode(encoding)} for k, v in response.headers.raw],
    }
    text = _utf8_or_none(body, truncated)
    if text is not None:
        result["body"] = text
    else:
        result["body_base64"] = base64.b64encode(body).decode("ascii")
    if truncated:
        result["truncated"] = True
    return result


def _utf8_or_none(body: bytes, truncated: bool) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cap can cut a character in half; that alone does not make the body binary.
        if truncated and exc.start >= len(body) - 3 and exc.reason == "unexpected end of data":
            return body[: exc.start].decode("utf-8")
        return None
