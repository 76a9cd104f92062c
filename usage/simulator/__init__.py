"""The upstream simulator: IPFoxy and BytesFlows on one local port, with synthetic traffic.

The demo, the tests, the benchmarks and the reliability drills talk to it instead of the real
providers; an `UpstreamAccount` points its base URL at it. It imports no Django models and
runs standalone. Full reference: docs/simulator.md.

Run it::

    python -m usage.simulator [--port 8765] [--seed N] [--latency-ms 50] [--no-rate-limit]
                              [--fault http_5xx=next:3] [--fault html=p:0.05,target:ipfoxy]
    python manage.py upstream_simulator   # same flags

It binds to 127.0.0.1 by default: the control endpoints under `/_sim/` have no
authentication, so never expose it.

Default credentials:
- IPFoxy: headers `api-id: demo-api-id`, `api-token: demo-api-token`. Any account name has
  traffic; the sub-account list shows SIMMAIN (the main account) and SIM00001..SIM00020.
- BytesFlows: `Authorization: Bearer bf-<account>` works for any <account>.

From Python (tests, demo)::

    from usage.simulator import SimulatorConfig, start_simulator

    with start_simulator(port=0, seed=7, config=SimulatorConfig(now=...)) as sim:
        sim.url                       # http://127.0.0.1:<port>
        sim.set_faults(http_5xx=2, latency_ms=50)
        sim.advance(3600); sim.revise(account="SIM00001", hour=..., flow="12.5")
        sim.stats()["max_requests_per_60s"]
        sim.pool(); sim.sub_account("FBalpha00001")  # the reseller book

Endpoints served: IPFoxy under `/ip/open-api/`: GET `get-account-use-flow-list`,
`get-sub-account-list`, `get-sub-account-flow`, `residential-data`; POST (form-data)
`create-sub-account`, `allocate-flow-sub-account`, `update-pass`, `update-ip-whitelist`.
BytesFlows (GET): `/api/v1/dashboard/asset`, `/api/v1/user/traffic/records`. Control:
`GET /_sim/stats`, `GET|POST /_sim/faults`, `GET|POST /_sim/clock`,
`GET|POST /_sim/rate-limit`, `GET|POST /_sim/revisions`, `POST /_sim/tokens[/expire|/restore]`,
`POST /_sim/stats/reset`, `GET /_sim/config`, `GET /_sim/reseller`,
`POST /_sim/reseller/{pool,status,login}`.

Modules: `server` (HTTP + `start_simulator`), `app` (routing, control), `ipfoxy`,
`ipfoxy_reseller` and `bytesflows` (the APIs), `provisioning` (the reseller book: pools,
provisioned sub-accounts, allocations, idempotency), `consumption` (how a provisioned
sub-account uses its allocations), `traffic` (the deterministic model), `faults`
(switches), `clock`, `stats`, `config`, `cli`.
"""

from usage.simulator.config import DEFAULT_API_ID, DEFAULT_API_TOKEN, SimulatorConfig
from usage.simulator.faults import FAULT_KINDS, FaultRule, FaultSettings
from usage.simulator.server import RunningSimulator, serve_forever, start_simulator
from usage.simulator.traffic import hour_flow

__all__ = [
    "DEFAULT_API_ID",
    "DEFAULT_API_TOKEN",
    "FAULT_KINDS",
    "FaultRule",
    "FaultSettings",
    "RunningSimulator",
    "SimulatorConfig",
    "hour_flow",
    "serve_forever",
    "start_simulator",
]
