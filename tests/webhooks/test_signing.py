"""Stripe-style signatures: the header format and `webhook_signature_verify`."""

import hashlib
import hmac

from webhooks.signing import (
    webhook_secret_generate,
    webhook_signature_header,
    webhook_signature_verify,
)

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1","type":"sync.failed"}'


def test_header_is_t_and_v1_hmac_sha256_of_timestamp_dot_body():
    header = webhook_signature_header(secret=SECRET, body=BODY, timestamp=1_767_225_600)
    expected = hmac.new(SECRET.encode(), b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1767225600,v1={expected}"


def test_verify_accepts_the_signature_within_the_tolerance():
    header = webhook_signature_header(secret=SECRET, body=BODY, timestamp=1000)
    assert webhook_signature_verify(secret=SECRET, body=BODY, header=header, now=1000 + 300)


def test_verify_refuses_a_wrong_secret_a_changed_body_and_an_old_timestamp():
    header = webhook_signature_header(secret=SECRET, body=BODY, timestamp=1000)
    assert not webhook_signature_verify(secret="whsec_other", body=BODY, header=header, now=1000)
    assert not webhook_signature_verify(secret=SECRET, body=BODY + b" ", header=header, now=1000)
    assert not webhook_signature_verify(secret=SECRET, body=BODY, header=header, now=1000 + 301)
    assert not webhook_signature_verify(secret=SECRET, body=BODY, header="garbage", now=1000)
    assert not webhook_signature_verify(secret=SECRET, body=BODY, header="t=1000", now=1000)


def test_verify_accepts_any_of_several_v1_signatures():
    good = webhook_signature_header(secret=SECRET, body=BODY, timestamp=1000).split(",")[1]
    header = f"t=1000,v1={'0' * 64},{good}"
    assert webhook_signature_verify(secret=SECRET, body=BODY, header=header, now=1000)


def test_generated_secrets_are_prefixed_and_unique():
    secrets = {webhook_secret_generate() for _ in range(50)}
    assert len(secrets) == 50
    assert all(s.startswith("whsec_") and len(s) > 40 for s in secrets)
