"""What keeps a long-running server within bounds: admission of translations (at most
`parallel` running and `max_queue` waiting; more are answered 503 at once with Retry-After), each
translation's time budget and the shutdown bound (work stops at the next tile boundary, answered
503), the optional API key, and the Prometheus metrics of it all.

The ASGI middlewares here answer before the app reads a request's upload where they can; every
request they refuse still gets a one-line JSON answer.
"""
import hmac
import math
import threading
import time

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from src.serve.model import UploadError

# The endpoints that translate (decode, normalise, run the network): admitted one by one.
TRANSLATING_PATHS = ("/translate", "/preview")
# What anyone may fetch without the key: the health check, and the page and API docs, which
# carry no model information and ask for the key themselves.
PUBLIC_PATHS = ("/health", "/", "/docs", "/docs/oauth2-redirect", "/openapi.json")
PUBLIC_PREFIXES = ("/static/",)
# Endpoints named in the metrics; any other path is counted as "other" (bounded label values).
METRIC_ENDPOINTS = ("/translate", "/preview", "/model", "/health", "/metrics", "/", "/docs", "/openapi.json")
LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# A first guess of one translation's seconds, until one has been measured (for Retry-After).
FIRST_GUESS_S = 2.0


class Unavailable(UploadError):
    """503: the server cannot take or finish this translation now; come back after `retry_after` s."""

    def __init__(self, message, reason, retry_after):
        super().__init__(message, 503, reason)
        self.retry_after = retry_after


def json_error(status, message, headers=None):
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def set_reason(scope, reason):
    """Record why a request was refused, for the rejected-uploads metric (read by MetricsMiddleware)."""
    scope.setdefault("state", {})["reject_reason"] = reason


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("pix2pix_http_requests", "HTTP requests answered, by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("pix2pix_http_request_duration_seconds", "time from a request's arrival to "
                                 "the end of its answer", ["endpoint"], buckets=LATENCY_BUCKETS_S,
                                 registry=self.registry)
        self.waiting = Gauge("pix2pix_translations_waiting", "translations admitted and waiting for a worker "
                             "(the queue that --max_queue bounds)", registry=self.registry)
        self.in_flight = Gauge("pix2pix_translations_in_flight", "translations running now",
                               registry=self.registry)
        self.rejected = Counter("pix2pix_rejected_uploads", "requests to /translate and /preview refused, by "
                                "reason", ["reason"], registry=self.registry)

    def exposition(self):
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Admission:
    """At most `parallel` translations run and `max_queue` wait; each has `timeout_s` from its
    start; after `begin_shutdown(grace_s)`, none is admitted and running ones stop at the grace's
    end. `check` (called before each batch of tiles) raises Unavailable when a translation must stop."""

    def __init__(self, parallel, max_queue, timeout_s, metrics):
        self.parallel, self.max_queue, self.timeout_s, self.metrics = parallel, max_queue, timeout_s, metrics
        self.workers = anyio.CapacityLimiter(parallel)
        self.admitted = self.running = 0
        self.counts = threading.Lock()  # `running` changes in worker threads
        self.mean_s = FIRST_GUESS_S
        self.abandon_at = None

    def retry_after(self):
        """Seconds until a slot is likely free: the waiting work over the workers, at the recent mean."""
        return max(1, math.ceil(self.mean_s * (self.admitted - self.running + 1) / self.parallel))

    def refusal(self):
        """The Unavailable to answer a new translation with, or None when it may wait its turn."""
        if self.abandon_at is not None:
            return Unavailable("the server is shutting down; retry on its restart", "shutting_down",
                               self.retry_after())
        if self.admitted >= self.parallel + self.max_queue:
            return Unavailable(f"server busy: {self.parallel} translations running and {self.max_queue} waiting "
                               f"(--max_queue); retry in {self.retry_after()} s", "queue_full", self.retry_after())
        return None

    def _update_waiting(self, running_change=0):
        with self.counts:
            self.running += running_change
            self.metrics.waiting.set(self.admitted - self.running)

    def enter(self):
        self.admitted += 1
        self._update_waiting()

    def leave(self):
        self.admitted -= 1
        self._update_waiting()

    def begin_shutdown(self, grace_s):
        self.abandon_at = time.monotonic() + grace_s

    def check(self, started, grace_s=None):
        """Raise Unavailable if a translation that started at `started` (monotonic) must stop now."""
        now = time.monotonic()
        if self.abandon_at is not None and now >= self.abandon_at:
            raise Unavailable("the server is shutting down and stopped this translation at its "
                              "--shutdown_timeout; retry on its restart", "shutting_down", self.retry_after())
        if now - started > self.timeout_s:
            raise Unavailable(f"translation stopped after {self.timeout_s:g} s, this server's time budget a "
                              "request (--request_timeout); send a smaller file or retry later", "timeout",
                              self.retry_after())

    async def admit(self, work):
        """`work(before_batch)` in a worker thread once one is free; before_batch raises
        Unavailable when the time budget or the shutdown grace runs out."""
        started = time.monotonic()
        before_batch = lambda: self.check(started)  # noqa: E731 (the hook src/inference calls)

        def counted():
            before_batch()  # the budget may have run out while waiting
            self._update_waiting(+1)
            self.metrics.in_flight.inc()
            try:
                return work(before_batch)
            finally:
                self.metrics.in_flight.dec()
                self._update_waiting(-1)
        result = await anyio.to_thread.run_sync(counted, limiter=self.workers)
        self.mean_s = 0.8 * self.mean_s + 0.2 * (time.monotonic() - started)
        return result


async def drain(receive):
    """Read and drop a request's body, so that the answer reaches a client still sending it."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class AdmissionMiddleware:
    """ASGI: a translating request beyond the queue is answered 503 with Retry-After at once."""

    def __init__(self, app, admission):
        self.app, self.admission = app, admission

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in TRANSLATING_PATHS or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        refusal = self.admission.refusal()
        if refusal:
            set_reason(scope, refusal.reason)
            await drain(receive)
            await json_error(503, str(refusal), {"Retry-After": str(refusal.retry_after)})(scope, receive, send)
            return
        self.admission.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.admission.leave()


class ApiKeyMiddleware:
    """ASGI: without the key (Authorization: Bearer KEY or X-API-Key: KEY), every path but the
    public ones is answered 401. Keys are compared in constant time."""

    def __init__(self, app, key):
        self.app, self.key = app, key.encode()

    def authorised(self, headers):
        given = headers.get("x-api-key")
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if given is None and scheme.lower() == "bearer":
            given = token.strip()
        return given is not None and hmac.compare_digest(given.encode(), self.key)

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if (scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
                or self.authorised(Headers(scope=scope))):
            await self.app(scope, receive, send)
            return
        set_reason(scope, "unauthorized")
        await drain(receive)
        await json_error(401, "missing or wrong API key: send it as 'Authorization: Bearer KEY' or "
                         "'X-API-Key: KEY' (the server's --api_key)",
                         {"WWW-Authenticate": "Bearer"})(scope, receive, send)


class MetricsMiddleware:
    """ASGI, outermost: counts every answer by endpoint and status, times it, and counts refused
    translating requests by the reason recorded with set_reason (else by status)."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.monotonic(), [500]
        state = scope.setdefault("state", {})

        async def recorded_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, recorded_send)
        finally:
            endpoint = scope["path"] if scope["path"] in METRIC_ENDPOINTS else "other"
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.monotonic() - started)
            if scope["path"] in TRANSLATING_PATHS and status[0] >= 400:
                self.metrics.rejected.labels(state.get("reject_reason", f"status_{status[0]}")).inc()
