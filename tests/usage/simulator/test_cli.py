import argparse
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.core.management import load_command_class

from usage.simulator import DEFAULT_API_ID, DEFAULT_API_TOKEN
from usage.simulator.cli import add_arguments, config_from_options

REPO = Path(__file__).resolve().parents[3]


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return vars(parser.parse_args(argv))


def test_defaults_need_no_setup():
    config = config_from_options(parse())

    assert config.seed == 0
    assert config.ipfoxy_keys == {DEFAULT_API_ID: DEFAULT_API_TOKEN}
    assert config.rate_limit_enabled is True
    assert config.rate_limit_per_minute == 60
    assert config.sub_account_names()[:2] == ("SIM00001", "SIM00002")
    assert len(config.sub_account_names()) == 20
    assert config.faults.rules == {}


def test_flags_set_seed_faults_and_accounts():
    config = config_from_options(
        parse(
            "--seed", "9", "--latency-ms", "50", "--no-rate-limit", "--sub-accounts", "10000",
            "--fault", "http_5xx=next:3", "--fault", "html=p:0.25,target:ipfoxy",
            "--api-id", "acme", "--api-token", "secret", "--now", "2026-11-20T12:00:00Z",
        )
    )  # fmt: skip

    assert config.seed == 9
    assert config.faults.latency_ms == 50
    assert config.rate_limit_enabled is False
    assert config.sub_account_names()[-1] == "SIM10000"
    assert config.faults.rules["http_5xx"].next == 3
    assert config.faults.rules["html"].probability == 0.25
    assert config.faults.rules["html"].target == "ipfoxy"
    assert config.ipfoxy_keys == {"acme": "secret"}
    assert config.now.isoformat() == "2026-11-20T12:00:00+00:00"


def test_unknown_fault_kind_is_refused():
    with pytest.raises(ValueError, match="unknown fault kind"):
        config_from_options(parse("--fault", "gremlins=next:1"))


def test_management_command_accepts_the_same_flags():
    command = load_command_class("usage", "upstream_simulator")
    parser = command.create_parser("manage.py", "upstream_simulator")

    options = vars(parser.parse_args(["--port", "0", "--seed", "4", "--fault", "html=next:1"]))

    assert config_from_options(options).faults.rules["html"].next == 1


def test_python_dash_m_serves_and_prints_url_and_credentials():
    process = subprocess.Popen(
        [sys.executable, "-m", "usage.simulator", "--port", "0", "--seed", "3"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = [process.stdout.readline() for _ in range(4)]
        url = banner[0].split(" on ")[1].split()[0]
        health = httpx.get(url + "/_sim/health", timeout=5).json()
        config = httpx.get(url + "/_sim/config", timeout=5).json()
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert url.startswith("http://127.0.0.1:")
    assert "demo-api-token" in banner[1]
    assert "Bearer bf-<account>" in banner[3]
    assert health == {"ok": True}
    assert config["seed"] == 3
    assert config["ipfoxy_api_ids"] == ["demo-api-id"]
