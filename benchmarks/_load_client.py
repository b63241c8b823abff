"""A lean HTTP/1.1 load client for benchmarks/serve_load.py: keep-alive connections on asyncio
streams (uvloop when installed), closed loop (each client sends its next request when answered)
or open loop (requests at a fixed rate, whatever the answers).

Why not httpx, which the tests use: on the 2 shared cores of the benchmark machine an
``httpx.AsyncClient`` spent 3.5-5.1 ms of CPU per request, more than the server it measured
(3.1-4.8 ms), so a load test with it mostly measured the client; this one spends ~0.1 ms.
Loopback only; bodies are JSON; responses must carry Content-Length (uvicorn's do).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Tally:
    """Per-status latencies (ms) of the requests that finished within the run."""

    ok_ms: list[float] = field(default_factory=list)
    refused_ms: list[float] = field(default_factory=list)  # 429
    other: dict[int, int] = field(default_factory=dict)  # other statuses (5xx, 4xx) by code
    transport_errors: int = 0

    def add(self, status: int, ms: float) -> None:
        if status == 200:
            self.ok_ms.append(ms)
        elif status == 429:
            self.refused_ms.append(ms)
        else:
            self.other[status] = self.other.get(status, 0) + 1


class Connection:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self._reader = self._writer = None

    async def post(self, path: str, body: bytes) -> tuple[int, dict, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host.encode(), self.port,
                                                                len(body), body))
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise ConnectionError("the server closed the connection") from None
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                headers[name.strip().lower().decode()] = value.strip().decode()
        data = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            self.close()
        return status, headers, data

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def closed_loop(url: str, path: str, bodies: list[bytes], clients: int, seconds: float) -> tuple[Tally, float]:
    """``clients`` connections, each sending its next request when answered (on a 429 it waits
    ``Retry-After``, as a well-behaved client does); returns the tally and the elapsed seconds."""
    tally, stop = Tally(), time.perf_counter() + seconds

    async def client(k: int) -> None:
        conn, n = Connection(url), k
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                status, headers, _ = await conn.post(path, bodies[n % len(bodies)])
            except ConnectionError:
                tally.transport_errors += 1
                continue
            n += clients
            tally.add(status, (time.perf_counter() - started) * 1000)
            if status == 429:
                await asyncio.sleep(max(0.0, min(float(headers.get("retry-after", "1")), stop - time.perf_counter())))
        conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return tally, time.perf_counter() - began


async def open_loop(url: str, path: str, bodies: list[bytes], rate: float, seconds: float,
                    connections: int = 256) -> tuple[Tally, float]:
    """Requests at ``rate`` per second for ``seconds``, each on a free connection of a pool of
    ``connections`` (a request that finds none free counts as a transport error: the client, not
    the server, was the limit)."""
    tally, free = Tally(), [Connection(url) for _ in range(connections)]
    pending: set[asyncio.Task] = set()
    bodies_cycle = itertools.cycle(bodies)

    async def one(conn: Connection, body: bytes) -> None:
        started = time.perf_counter()
        try:
            status, _, _ = await conn.post(path, body)
            tally.add(status, (time.perf_counter() - started) * 1000)
        except ConnectionError:
            tally.transport_errors += 1
        free.append(conn)

    began = time.perf_counter()
    interval, sent = 1.0 / rate, 0
    while (now := time.perf_counter()) < began + seconds:
        due = began + sent * interval
        if now < due:
            await asyncio.sleep(due - now)
            continue
        sent += 1
        if not free:
            tally.transport_errors += 1
            continue
        task = asyncio.ensure_future(one(free.pop(), next(bodies_cycle)))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=120)
    elapsed = time.perf_counter() - began
    for conn in free:
        conn.close()
    return tally, elapsed


def run(coro):
    """Runs ``coro`` on uvloop when installed (as the server does), else asyncio."""
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)
