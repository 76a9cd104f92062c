"""The REST API (`/api/v1/`): API-key auth, tenancy base, reseller and customer endpoints."""
