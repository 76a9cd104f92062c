"""The house's layers are import-linter contracts (pyproject.toml, run by `make lint`); this
keeps their lists whole: every module of an app is either named as domain code in the
contracts (so it may import neither the API layer nor a tasks module) or is one of the
presentation and wiring kinds that may (API, admin, views, serializers, urls, app configs,
error-code tables, management commands, migrations, webhook payload builders, the simulator)."""

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The apps (core is below them all: the layers contract keeps it from importing any).
APPS = ["accounts", "webhooks", "idempotency", "usage", "billing"]
#: Module (or package) names that are presentation or wiring, never domain code.
NOT_DOMAIN = {
    "api",
    "admin",
    "admin_panels",
    "apps",
    "errors",
    "management",
    "migrations",
    "openapi",
    "serializers",
    "simulator",
    "urls",
    "views",
    "webhook_payloads",
}
#: The Idempotency-Key layer's view mixin and its OpenAPI hook: part of the HTTP API.
NOT_DOMAIN_MODULES = {"idempotency.mixins", "idempotency.schema"}
#: Still building webhook payloads from API serializers while its replacement (services record
#: an event; `*.webhook_payloads` build the payload) lands: to go with it.
NOT_DOMAIN_MODULES |= {"billing.events"}


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _covered(module: str, listed: set[str]) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:i]) in listed for i in range(1, len(parts) + 1))


def _app_modules() -> list[str]:
    modules = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                continue
            if any(part in NOT_DOMAIN for part in parts[1:]):
                continue
            if ".".join(parts) not in NOT_DOMAIN_MODULES:
                modules.append(".".join(parts))
    return modules


@pytest.mark.parametrize("contract_id", ["domain-without-api", "services-without-tasks"])
def test_every_domain_module_is_named_in_the_contract(contract_id):
    contract = _contracts()[contract_id]
    listed = set(contract["source_modules"]) | set(contract["forbidden_modules"])
    missing = [module for module in _app_modules() if not _covered(module, listed)]
    assert missing == []


def test_the_layers_name_every_app_once_in_the_documented_order():
    layers = _contracts()["layers"]["layers"]
    assert layers == ["config", "billing", "usage", "webhooks", "accounts", "idempotency", "core"]
