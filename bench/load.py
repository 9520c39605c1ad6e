"""A bounded load generator on loopback, for bench/deploy_load.py and the end-to-end tests.

``Load(port, hosts, clients=4)`` runs *clients* threads, each sending one request at a time
(a new connection per request, as a browser's first visit does) to ``127.0.0.1:port`` with the
Host header of each of *hosts* in turn, until stopped. At most *clients* requests are in flight,
and ``rate`` (requests per second over all clients) bounds it further. Every request is recorded
with its start time, Host, outcome (the status, or the name of the exception: a refused or reset
connection, a timeout) and latency. A request fails unless its status is 2xx or 3xx.

    with Load(8080, ["harbor.localhost", "meadow.localhost"], clients=4) as load:
        ...                                    # a deploy
    print(summary(load.samples))

``connect(host)`` may be given to open the connection another way (https with a CA and SNI,
say); it returns an ``http.client.HTTPConnection``, connected or not.
"""

from __future__ import annotations

import http.client
import itertools
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    start: float  # time.monotonic() when the request was sent
    host: str
    outcome: int | str  # the HTTP status, or the exception's class name
    latency: float  # seconds until the whole response was read (or the error)
    release: str = ""  # X-Sitekit-Release of the response: which release answered
    pool: str = ""  # X-Sitekit-Pool: the pool whose master answered ("" for a site's own)

    @property
    def ok(self) -> bool:
        return isinstance(self.outcome, int) and 200 <= self.outcome < 400


class Load:
    def __init__(self, port: int, hosts: Sequence[str], clients: int = 4, path: str = "/",
                 rate: float | None = None, timeout: float = 30.0,
                 connect: Callable[[str], http.client.HTTPConnection] | None = None):
        if not hosts:
            raise ValueError("Load needs at least one host")
        self.port, self.hosts, self.clients, self.path = port, list(hosts), clients, path
        self.interval = clients / rate if rate else 0.0  # per client, to keep the total rate
        self.timeout = timeout
        self.connect = connect or (
            lambda host: http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        )
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def request(self, host: str) -> Sample:
        start = time.monotonic()
        conn = None
        try:
            conn = self.connect(host)  # may connect (and fail) already, as https does
            conn.request("GET", self.path, headers={"Host": host, "Connection": "close"})
            resp = conn.getresponse()
            resp.read()
            outcome: int | str = resp.status
            release = resp.getheader("X-Sitekit-Release", "")
            pool = resp.getheader("X-Sitekit-Pool", "")
        except (OSError, http.client.HTTPException) as exc:
            outcome, release, pool = type(exc).__name__, "", ""
        finally:
            if conn is not None:
                conn.close()
        return Sample(start, host, outcome, time.monotonic() - start, release, pool)

    def _client(self, offset: int) -> None:
        hosts = itertools.islice(itertools.cycle(self.hosts), offset, None)
        for host in hosts:
            if self._stop.is_set():
                return
            sample = self.request(host)
            self.samples.append(sample)  # list.append is atomic
            if self.interval:
                self._stop.wait(max(0.0, self.interval - sample.latency))

    def start(self) -> Load:
        for i in range(self.clients):
            thread = threading.Thread(target=self._client, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def between(self, start: float, end: float | None = None) -> list[Sample]:
        """The requests sent from *start* to *end* (time.monotonic())."""
        return [s for s in self.samples if s.start >= start and (end is None or s.start < end)]


def answered_by(samples: Iterable[Sample], field: str = "release") -> dict[str, set[str]]:
    """Host -> the values of ``field`` (``release`` or ``pool``) of its answered requests: a
    host answered by both the old and the new release was under load across its reload."""
    found: dict[str, set[str]] = {}
    for sample in samples:
        if sample.ok:
            found.setdefault(sample.host, set()).add(getattr(sample, field))
    return found


def gaps(samples: Iterable[Sample], start: float, end: float, step: float = 1.0) -> list[float]:
    """The offsets (seconds from ``start``) of each ``step`` from ``start`` to ``end`` in which no
    request sent was answered: load checks assert there are none, so that "0 failed" cannot
    come from a window in which nothing was sent."""
    answered = [s.start for s in samples if s.ok]
    missing, at = [], start
    while at < end:
        # the last step ends at ``end``: a whole step, overlapping the one before
        low = max(start, min(at, end - step))
        if not any(low <= t < low + step for t in answered):
            missing.append(round(low - start, 1))
        at += step
    return missing


def percentile(values: Sequence[float], q: float) -> float:
    """The *q*-th percentile (0-100) by the nearest-rank method; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def summary(samples: Iterable[Sample]) -> dict:
    """Requests sent, failed (by outcome), and latencies in milliseconds."""
    samples = list(samples)
    latencies = [s.latency for s in samples]
    failures = Counter(str(s.outcome) for s in samples if not s.ok)
    return {"sent": len(samples),
            "failed": sum(failures.values()),
            "failures": dict(failures),
            "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else 0.0,
            "p99_ms": round(1000 * percentile(latencies, 99), 1),
            "max_ms": round(1000 * max(latencies), 1) if latencies else 0.0}


def describe(label: str, figures: dict) -> str:
    failures = ", ".join(f"{n} {kind}" for kind, n in figures["failures"].items())
    return (
        f"{label}: {figures['sent']} sent, {figures['failed']} failed"
        + (f" ({failures})" if failures else "")
        + f"; p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms"
    )
