"""The usage app's REST API (reseller and customer scope)."""
