"""Webhook test helpers: an endpoint factory and a receiver (httpx MockTransport)."""

from dataclasses import dataclass, field

import httpx
import pytest

from tests.api.conftest import _fresh_throttle_counters, reseller_api, reseller_key  # noqa: F401
from webhooks import delivery as delivery_module
from webhooks.services import webhook_endpoint_create


@dataclass
class Receiver:
    """Answers each POST with the next of `statuses` (the last repeats); keeps requests."""

    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[httpx.Request] = field(default_factory=list)
    error: Exception | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        status = self.statuses[min(len(self.requests), len(self.statuses)) - 1]
        headers = {"Location": "https://elsewhere.example/"} if 300 <= status < 400 else {}
        return httpx.Response(status, text=f"answer {status}", headers=headers)


@pytest.fixture
def receiver(monkeypatch) -> Receiver:
    receiver = Receiver()

    monkeypatch.setattr(
        delivery_module, "http_transport", lambda: httpx.MockTransport(receiver.handler)
    )
    return receiver


@pytest.fixture
def make_endpoint(reseller):
    def make(events=("sync.failed",), url="https://hooks.example.com/flowbill", **kwargs):
        return webhook_endpoint_create(
            reseller=kwargs.pop("reseller", reseller), url=url, enabled_events=events, **kwargs
        )

    return make
