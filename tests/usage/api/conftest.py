from tests.api.conftest import _fresh_throttle_counters, reseller_api, reseller_key  # noqa: F401
