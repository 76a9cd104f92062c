"""A real receiver: a threaded local HTTP server that verifies the signature as the docs
tell integrators to, fed by the real httpx sender (no mocks on the wire)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from webhooks.delivery import webhook_delivery_send
from webhooks.events import webhook_event_emit
from webhooks.models import WebhookDelivery
from webhooks.signing import webhook_signature_verify


@pytest.fixture
def server():
    received = []

    class Handler(BaseHTTPRequestHandler):
        secret = ""

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = webhook_signature_verify(
                secret=Handler.secret, body=body, header=self.headers["Flowbill-Signature"]
            )
            received.append((json.loads(body), ok))
            self.send_response(204 if ok else 400)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, Handler, received
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.django_db
def test_a_real_receiver_verifies_the_signature_and_acknowledges(
    reseller, make_endpoint, server, settings
):
    httpd, handler, received = server
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = True  # a local http:// receiver: opt-in only
    _, secret = make_endpoint(url=f"http://127.0.0.1:{httpd.server_port}/hooks")
    handler.secret = secret
    event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={"id": 9})

    result = webhook_delivery_send(
        delivery_id=WebhookDelivery.objects.get(event=event).pk, now=timezone.now()
    )

    assert result.status == "succeeded" and result.last_response_status == 204
    ((payload, verified),) = received
    assert verified
    assert payload["id"] == f"evt_{event.pk}" and payload["data"]["object"] == {"id": 9}


@pytest.mark.django_db
def test_a_receiver_with_another_secret_refuses_and_the_delivery_retries(
    reseller, make_endpoint, server, settings
):
    httpd, handler, received = server
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    make_endpoint(url=f"http://127.0.0.1:{httpd.server_port}/hooks")
    handler.secret = "whsec_not_the_one"
    event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={})

    result = webhook_delivery_send(
        delivery_id=WebhookDelivery.objects.get(event=event).pk, now=timezone.now()
    )

    assert [ok for _, ok in received] == [False]
    assert result.status == "pending" and result.last_response_status == 400
