"""Helpers for connector tests: scripted upstreams on httpx.MockTransport, no sleeping."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict, deque

import httpx
import pytest

from usage.providers import build_connector
from usage.providers.ratelimit import InProcessBudget
from usage.providers.transport import RetryPolicy

API_ID = "id-SECRET-4711"
API_TOKEN = "tok-SECRET-abcdef0123456789"
BF_TOKEN = "bf-SECRET-eyJhbGciOiJIUzI1NiJ9"
NOW = dt.datetime(2025, 6, 27, 12, 30, tzinfo=dt.UTC)


class Upstream:
    """Answers each path from a queue of scripted responses (the last one repeats)."""

    def __init__(self):
        self.queues: dict[str, deque] = defaultdict(deque)
        self.requests: list[httpx.Request] = []

    def add(self, path, *responses):
        self.queues[path].extend(responses)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.queues[request.url.path]
        item = queue.popleft() if len(queue) > 1 else queue[0]
        if callable(item):
            item = item(request)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, httpx.Response):
            return item
        return httpx.Response(200, content=json.dumps(item).encode())

    def params(self, i=-1):
        return dict(self.requests[i].url.params)


class SleepRecorder:
    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def upstream():
    return Upstream()


@pytest.fixture
def sleeps():
    return SleepRecorder()


@pytest.fixture
def make_connector(upstream, sleeps):
    def make(provider="ipfoxy", *, retry=None, **options):
        client = httpx.Client(transport=httpx.MockTransport(upstream.handler))
        credentials = {"api_id": API_ID, "api_token": API_TOKEN} if provider == "ipfoxy" else {}
        return build_connector(
            provider=provider,
            base_url="https://upstream.test",
            credentials=credentials,
            client=client,
            budget=InProcessBudget(),
            budget_key=f"{provider}:1",
            retry=retry or RetryPolicy(max_attempts=3, base_delay=1.0),
            **{"sleep": sleeps, "wall_clock": lambda: NOW, "rng": random.Random(7), **options},
        )

    return make


def flow_body(rows, *, count=None, timezone="+08:00", code=0, **extra):
    data = {"list": rows, "unit": "MB", "count": str(len(rows) if count is None else count)}
    if timezone is not None:
        data["timezone"] = timezone
    return {"code": code, "msg": "Success", "data": {**data, **extra}}


def flow_row(date, flow, account="SUB001"):
    return {"date": date, "account": account, "flow": flow}
