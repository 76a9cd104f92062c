import httpx
import pytest

from usage.providers import UnknownProviderError, build_connector
from usage.providers.base import AuthError, HistoryConnector, LedgerConnector
from usage.providers.bytesflows import BytesFlowsConnector
from usage.providers.ipfoxy import IPFoxyConnector
from usage.providers.ratelimit import InProcessBudget

from .conftest import API_ID, API_TOKEN


def build(provider, credentials=None, **options):
    return build_connector(
        provider=provider,
        base_url="https://apis.ipfoxy.com/",
        credentials=credentials if credentials is not None else {},
        client=httpx.Client(),
        budget=InProcessBudget(),
        budget_key="ua:1",
        **options,
    )


def test_ipfoxy_builds_a_history_connector_with_its_options():
    connector = build(
        "ipfoxy", {"api_id": API_ID, "api_token": API_TOKEN}, mb_bytes=1_000_000,
        requests_per_minute=30, max_window_hours=48,
    )  # fmt: skip
    assert isinstance(connector, IPFoxyConnector) and isinstance(connector, HistoryConnector)
    assert (connector.mb_bytes, connector.max_window_hours) == (1_000_000, 48)
    assert connector.transport.per_minute == 30
    assert connector.transport.base_url == "https://apis.ipfoxy.com"
    assert API_TOKEN not in repr(connector) and API_ID not in repr(connector)


def test_bytesflows_builds_a_ledger_connector():
    connector = build("bytesflows", record_timezone="Asia/Shanghai")
    assert isinstance(connector, BytesFlowsConnector) and isinstance(connector, LedgerConnector)
    assert connector.transport.per_minute == 50


def test_unknown_provider_is_a_clear_error():
    with pytest.raises(UnknownProviderError, match=r"unknown provider 'oxylabs' \(known: "):
        build("oxylabs")


def test_ipfoxy_without_credentials_is_an_auth_error():
    with pytest.raises(AuthError, match="api_id and api_token"):
        build("ipfoxy", {"api_id": API_ID})


def test_unknown_option_is_refused():
    with pytest.raises(TypeError):
        build("bytesflows", colour="blue")


def test_unknown_record_timezone_is_refused():
    with pytest.raises(ValueError, match="unknown timezone"):
        build("bytesflows", record_timezone="Mars/Olympus")
