"""local.http_request against a real aiohttp server on 127.0.0.1: the reference's
result shape (headers as single-key maps, duplicates kept; text or base64 body),
request bodies and headers, the body cap, timeouts and refused connections."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from multidict import CIMultiDict

from app.engine.kinds.local_kinds import HttpRequestError, LocalHttpRequestKind
from tests.engine.kindctx import KindTestContext

KIND = LocalHttpRequestKind()
BINARY = bytes(range(256)) * 4


async def text(_: web.Request) -> web.Response:
    headers = CIMultiDict([("Set-Cookie", "a=1"), ("X-Dup", "first"), ("Set-Cookie", "b=2"),
                           ("X-Dup", "second")])
    return web.Response(text="héllo wörld", headers=headers)


async def binary(_: web.Request) -> web.Response:
    return web.Response(body=BINARY, content_type="application/octet-stream")


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({
        "method": request.method,
        "headers": dict(request.headers),
        "body_base64": base64.b64encode(body).decode(),
    }, status=201)


async def slow(_: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="late")


async def big(_: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(_)
    for _i in range(48):
        await response.write("é".encode() * 32768)  # 64 KiB per chunk
    await response.write_eof()
    return response


@pytest_asyncio.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/text", text)
    app.router.add_get("/binary", binary)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def request(tmp_path: Path, **payload: Any) -> dict[str, Any]:
    ctx = KindTestContext(tmp_path, kind=KIND.name)
    return await KIND.run(ctx, KIND.validate(payload))


@pytest.mark.asyncio
async def test_text_body_and_duplicate_headers_in_the_reference_shape(
    server: str, tmp_path: Path
) -> None:
    result = await request(tmp_path, url=f"{server}/text")
    assert result["status"] == 200
    assert result["body"] == "héllo wörld" and "body_base64" not in result
    headers = result["headers"]
    assert all(isinstance(h, dict) and len(h) == 1 for h in headers)
    assert [h for h in headers if "Set-Cookie" in h] == [{"Set-Cookie": "a=1"},
                                                         {"Set-Cookie": "b=2"}]
    assert [h["X-Dup"] for h in headers if "X-Dup" in h] == ["first", "second"]
    assert json.loads(json.dumps(result)) == result  # JSON-able as stored


@pytest.mark.asyncio
async def test_binary_body_comes_back_as_base64(server: str, tmp_path: Path) -> None:
    result = await request(tmp_path, url=f"{server}/binary")
    assert "body" not in result
    assert base64.b64decode(result["body_base64"]) == BINARY


@pytest.mark.asyncio
async def test_method_headers_and_bodies_are_sent(server: str, tmp_path: Path) -> None:
    result = await request(tmp_path, url=f"{server}/echo", method="put",
                           headers={"X-Probe": "yes"}, body="ünïcode")
    assert result["status"] == 201
    seen = json.loads(result["body"])
    assert seen["method"] == "PUT" and seen["headers"]["X-Probe"] == "yes"
    assert base64.b64decode(seen["body_base64"]) == "ünïcode".encode()

    result = await request(tmp_path, url=f"{server}/echo", method="POST",
                           body_base64=base64.b64encode(BINARY).decode())
    assert base64.b64decode(json.loads(result["body"])["body_base64"]) == BINARY


@pytest.mark.asyncio
async def test_body_is_capped_and_marked_truncated(server: str, tmp_path: Path) -> None:
    result = await request(tmp_path, url=f"{server}/big", max_body_bytes=100_001)
    assert result["truncated"] is True
    # "é" is two bytes: the cap cut one in half, which does not make the body binary.
    assert result["body"] == "é" * 50_000


@pytest.mark.asyncio
async def test_timeout_fails_the_attempt(server: str, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(HttpRequestError, match=r"no response within 0.3 s"):
        await request(tmp_path, url=f"{server}/slow", timeout_s=0.3)
    assert time.monotonic() - started < 2.0


@pytest.mark.asyncio
async def test_refused_connection_fails_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(HttpRequestError, match=r"GET http://127.0.0.1:\d+/x: ConnectError"):
        await request(tmp_path, url=f"http://127.0.0.1:{port}/x")
