"""A client that sends its headers and part of its body, then goes quiet (slowloris): the edge must answer
408 and let go of the connection, instead of holding it and a handler for ever. aiohttp's keep-alive
timeout does not cover a request whose body is being read."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp import web

from bot.http_limits import EdgeRefusal, read_json_object
from tests.reliability.served_bot import ServedBot

ANSWER_WAIT = 60.0  # seconds the client waits for any answer before calling it a hang (a busy machine)


@pytest.fixture
async def edge() -> AsyncIterator[int]:
    """A server whose one route reads its body through the edge, with a short body deadline."""

    async def handle(request: web.Request) -> web.Response:
        try:
            return web.json_response(await read_json_object(request, read_seconds=0.2))
        except EdgeRefusal as refused:
            return refused.response()

    app = web.Application()
    app.router.add_post("/api/messages", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


async def test_a_body_that_stops_arriving_gets_408_and_the_connection_is_closed(edge: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", edge)
    writer.write(b"POST /api/messages HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"type\": \"mess")
    await writer.drain()

    answer = await asyncio.wait_for(reader.read(), ANSWER_WAIT)  # read() returns only once the server closes
    writer.close()

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 0.2 seconds" in answer


async def test_a_body_that_arrives_whole_is_read(edge: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", edge)
    writer.write(b"POST /api/messages HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    await writer.drain()

    answer = await asyncio.wait_for(reader.read(), ANSWER_WAIT)
    writer.close()

    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_client_that_hangs_up_mid_body_is_a_refusal_not_a_logged_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone can open a connection, start a body and close it: that must not be logged (and counted) as
    the server's own unexpected failure."""
    bot = ServedBot(tmp_path).start()
    try:
        with socket.create_connection(("127.0.0.1", bot.port), timeout=ANSWER_WAIT) as client:
            client.sendall(b"POST /api/messages HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 100\r\n\r\n{\"type\":")
            client.shutdown(socket.SHUT_WR)
            while client.recv(4096):  # until the server has dealt with it and closed
                pass
        assert bot.request("GET", "/healthz").status == 200
    finally:
        bot.stop()

    assert not [r for r in caplog.records if r.name == "bot.app" and r.levelno >= logging.ERROR]
