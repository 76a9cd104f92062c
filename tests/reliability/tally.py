"""The drill's own figures, counted by the tests as they run and printed at the end of the
session (`docs/reliability.md` quotes them): so the numbers in the docs are what ran."""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()

LABELS = {
    "upstream_faults_injected": "upstream faults injected (simulator tally)",
    "upstream_fault_cases": "upstream fault cases (kinds x placements)",
    "rows_checked_exact": "usage rows checked byte-exact after upstream faults",
    "worker_kills": "workers SIGKILLed mid-task",
    "crashes_survived": "crash drills converged after restart",
    "outages": "database/broker outages injected",
    "hostile_requests": "hostile API/admin requests sent",
    "secret_scans": "logs/responses/pages/PDFs scanned for secrets",
    "rows_compared": "usage rows and invoice rows compared (1 vs 8 workers)",
}


def add(name: str, n: int = 1) -> None:
    FIGURES[name] += n


def summary_lines() -> list[str]:
    return [f"{FIGURES[key]:>8}  {label}" for key, label in LABELS.items() if FIGURES[key]]
