"""The load generator: its own process, an aiohttp client holding N connections, one signed token (Teams)
or each request signed with Slack's v0 scheme as it goes out (Slack signs every request it sends).

It runs in a separate process so the server under test has its event loop and its CPU share to itself,
as it would behind Teams or Slack; the bodies are built before the clock starts.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp

from tests.fakes.slack_signing import FORM, signed_headers


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    failures: list[str]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) >= 100:
            return statistics.quantiles(self.latencies_ms, n=100)[q - 1]
        return max(self.latencies_ms)


def drive(url: str | list[str], bodies: list[dict[str, Any]], token: str, concurrency: int, expect: str) -> LoadResult:
    """POST every body, ``concurrency`` at a time; a request counts as failed unless it answers 2xx and its
    body contains ``expect`` (the bot must have really done the work, not refused it). Several URLs (instances
    behind one imaginary load balancer) take the bodies in turn."""
    urls = [url] if isinstance(url, str) else url
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    return asyncio.run(_drive(urls, [json.dumps(b).encode() for b in bodies], lambda _: headers, concurrency, expect))


def drive_slack(url: str, forms: list[str], signing_secret: str, concurrency: int, expect: str) -> LoadResult:
    """POST every form body as Slack does: each signed (v0, HMAC-SHA256 of timestamp and body) when it is sent,
    so the signing is the load generator's cost and every timestamp is fresh."""
    def headers(body: bytes) -> dict[str, str]:
        return signed_headers(signing_secret, body, content_type=FORM)

    return asyncio.run(_drive([url], [form.encode() for form in forms], headers, concurrency, expect))


async def _drive(urls: list[str], bodies: list[bytes], headers_for: Callable[[bytes], dict[str, str]],
                 concurrency: int, expect: str) -> LoadResult:
    latencies: list[float] = []
    failures: list[str] = []
    pending = iter(enumerate(bodies))

    async def worker(session: aiohttp.ClientSession) -> None:
        for n, body in pending:
            url = urls[n % len(urls)]
            headers = headers_for(body)
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                text = await response.text()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status >= 300 or expect not in text:
                failures.append(f"{response.status} {text[:200]}")

    connector = aiohttp.TCPConnector(limit=concurrency)
    # A request unanswered for two minutes is a hung server: the run fails rather than waits forever.
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return LoadResult(len(bodies), seconds, latencies, failures)
