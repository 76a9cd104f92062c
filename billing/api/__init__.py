"""The billing app's REST API (reseller and customer scope)."""
