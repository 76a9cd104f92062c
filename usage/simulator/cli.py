"""Command-line flags shared by `python -m usage.simulator` and `manage.py upstream_simulator`."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from usage.simulator.config import SimulatorConfig
from usage.simulator.faults import FAULT_KINDS, FaultSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's flags to `parser` (argparse or Django's CommandParser)."""
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any)")
    parser.add_argument("--seed", type=int, default=0, help="traffic seed (default 0)")
    parser.add_argument("--api-id", default=None, help='IPFoxy api-id (default "demo-api-id")')
    parser.add_argument(
        "--api-token", default=None, help='IPFoxy api-token (default "demo-api-token")'
    )
    parser.add_argument(
        "--sub-accounts", type=int, default=20, help="listed IPFoxy sub-accounts SIM00001.. (20)"
    )
    parser.add_argument(
        "--sub-account-names", default="", help="comma-separated sub-account names instead"
    )
    parser.add_argument(
        "--pool-mb",
        type=int,
        default=SimulatorConfig.ipfoxy_pool_mb,
        help="IPFoxy main-account traffic pool per api-id, MB (10 TiB); beyond it, 60300",
    )
    parser.add_argument(
        "--password-gates-traffic",
        action="store_true",
        help="after update-pass, a sub-account's traffic stops until its client logs in anew",
    )
    parser.add_argument("--no-rate-limit", action="store_true", help="turn the rate limit off")
    parser.add_argument(
        "--rate-limit", type=int, default=60, help="IPFoxy requests per rolling minute (60)"
    )
    parser.add_argument("--now", default=None, help="freeze the clock at this ISO-8601 time")
    parser.add_argument("--latency-ms", type=int, default=0, help="latency added to every answer")
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="stall of a slow answer")
    parser.add_argument("--http-5xx-status", type=int, default=503, help="status of 5xx faults")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of 429 faults")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=SPEC",
        help="a fault rule, e.g. http_5xx=next:3 or html=p:0.05,target:ipfoxy (repeatable); "
        "kinds: " + ", ".join(sorted(FAULT_KINDS)),
    )


def config_from_options(options: dict[str, Any]) -> SimulatorConfig:
    """Build a `SimulatorConfig` from parsed flags (a dict, as Django passes them)."""
    faults = FaultSettings()
    changes: dict[str, Any] = {
        "latency_ms": options["latency_ms"],
        "slow_seconds": options["slow_seconds"],
        "http_5xx_status": options["http_5xx_status"],
        "retry_after": options["retry_after"],
    }
    rules: dict[str, str] = {}
    for spec in options.get("fault") or []:
        kind, sep, rule = spec.partition("=")
        if not sep:
            raise ValueError(f"--fault needs KIND=SPEC, got {spec!r}")
        rules[kind.strip()] = rule.strip()
    faults.apply({**changes, "faults": rules})
    kwargs: dict[str, Any] = {
        "seed": options["seed"],
        "ipfoxy_sub_account_count": options["sub_accounts"],
        "rate_limit_enabled": not options["no_rate_limit"],
        "rate_limit_per_minute": options["rate_limit"],
        "ipfoxy_pool_mb": options.get("pool_mb", SimulatorConfig.ipfoxy_pool_mb),
        "ipfoxy_password_gates_traffic": bool(options.get("password_gates_traffic")),
        "faults": faults,
    }
    if options.get("api_id") or options.get("api_token"):
        config_default = SimulatorConfig()
        default_id, default_token = next(iter(config_default.ipfoxy_keys.items()))
        kwargs["ipfoxy_keys"] = {
            options.get("api_id") or default_id: options.get("api_token") or default_token
        }
    names = [n.strip() for n in (options.get("sub_account_names") or "").split(",") if n.strip()]
    if names:
        kwargs["ipfoxy_sub_accounts"] = tuple(names)
    if options.get("now"):
        now = dt.datetime.fromisoformat(options["now"].replace("Z", "+00:00"))
        kwargs["now"] = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    return SimulatorConfig(**kwargs)


def banner(url: str, config: SimulatorConfig) -> str:
    """What to print on start: where it listens and the credentials that work."""
    keys = ", ".join(f"api-id={i!r} api-token={t!r}" for i, t in config.ipfoxy_keys.items())
    names = config.sub_account_names()
    listed = f"{names[0]}..{names[-1]}" if names else "none"
    prefix = config.bytesflows_token_prefix
    rate = f"{config.rate_limit_per_minute}/min per api-id" if config.rate_limit_enabled else "off"
    return "\n".join(
        [
            f"Upstream simulator listening on {url} (seed {config.seed})",
            f"  IPFoxy     base_url {url}  headers {keys}",
            f"             main account {config.ipfoxy_main_account}, sub-accounts {listed}"
            f" ({len(names)}); any account name has traffic; rate limit {rate};"
            f" traffic pool {config.ipfoxy_pool_mb} MB per api-id",
            f"  BytesFlows base_url {url}  Authorization: Bearer {prefix}<account>"
            f" (e.g. {prefix}demo)"
            if prefix
            else f"  BytesFlows base_url {url}",
            f"  Control    {url}/_sim/stats, /_sim/faults, /_sim/clock (no auth: local only)",
            "Ctrl-C to stop.",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    from usage.simulator.server import serve_forever

    parser = argparse.ArgumentParser(prog="python -m usage.simulator", description=__doc__)
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        config = config_from_options(options)
    except ValueError as exc:
        parser.error(str(exc))
    serve_forever(
        host=options["host"],
        port=options["port"],
        config=config,
        on_ready=lambda url: print(banner(url, config), flush=True),
    )
