"""The embedded broker: kombu's filesystem transport over folders under `var/broker/`.

Chosen only when no broker is configured (`CELERY_BROKER_URL` unset) and the embedded
runtime is on (`FLOWBILL_EMBEDDED_RUNTIME=1`, which `manage.py serve` sets for the web
server, the worker and beat it starts). Otherwise nothing changes: with a broker URL it is
used (production: Redis), and without one or the other tasks run in-process (the test
suite, `manage.py demo --no-serve`, a plain `runserver`).

Each message is one JSON file in `queue/` (`<time>_<uuid>.<queue>.msg`), so whatever is
queued while nothing runs (or when the worker stops) is still there at the next start. A
worker takes a message by renaming it into `processed/` (kept a day, then pruned by the
runtime, `processed_messages_prune`); `control/` holds the exchange bindings. A message a
worker held (one scheduled for later, a retry's countdown) is put back into `queue/` when
the worker stops cleanly; a worker killed outright loses the messages it held, as with any
broker without acknowledgements: beat's sweeps (webhook deliveries due, sync runs left
queued, upstream writes pending, the invoice cycle's catch-up) pick the work up again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from config.runtime.transport import ALIAS  # registers the atomic filesystem transport

#: The broker URL of the embedded runtime (the folders are transport options): kombu's
#: filesystem transport with an atomic put (`config.runtime.transport`).
EMBEDDED_BROKER_URL = f"{ALIAS}://localhost//"  # the host only keeps kombu from warning

#: How long a processed message is kept under `processed/` (for a look after the fact).
PROCESSED_KEEP_SECONDS = 24 * 3600


def celery_broker_url(*, configured: str, embedded: bool) -> str:
    """The broker URL: `configured` when set, else the embedded broker when `embedded`,
    else "" (no broker: tasks run in-process)."""
    if configured:
        return configured
    return EMBEDDED_BROKER_URL if embedded else ""


def embedded_broker_folders(broker_dir: Path) -> dict[str, Path]:
    return {
        "queue": broker_dir / "queue",
        "processed": broker_dir / "processed",
        "control": broker_dir / "control",
    }


def embedded_broker_transport_options(broker_dir: Path) -> dict:
    """The filesystem transport's options over `broker_dir`, its folders created (the
    transport needs them to exist). Producers and the worker share one `queue/` folder."""
    folders = embedded_broker_folders(broker_dir)
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        # A taken message is renamed into processed/ on the same file system: one atomic
        # step (without it kombu moves it to the system's temp folder, maybe a copy).
        "store_processed": True,
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
    }


def embedded_broker_ready(transport_options: dict) -> bool:
    """True when the queue folder exists and this process may write to it."""
    folder = transport_options.get("data_folder_out")
    return bool(folder) and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)


def processed_messages_prune(broker_dir: Path, *, now: float | None = None) -> int:
    """Delete processed messages older than `PROCESSED_KEEP_SECONDS`; returns how many."""
    cutoff = (time.time() if now is None else now) - PROCESSED_KEEP_SECONDS
    deleted = 0
    folder = embedded_broker_folders(broker_dir)["processed"]
    if not folder.is_dir():
        return 0
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                deleted += 1
        except FileNotFoundError:
            continue
    return deleted
