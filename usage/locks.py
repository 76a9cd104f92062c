"""One sync per sub-account at a time.

`sub_account_sync_lock(...)` is a context manager yielding a `SyncLock`, true when this
caller holds the sub-account's lock and false when it could not get it in time. The backend
is picked once per call, from the deployment:

- `settings.REDIS_URL` set (workers on several hosts): a Redis lock (`SET NX PX` with a
  random token, released by a compare-and-delete script) with a time-to-live, so a worker
  killed mid-sync frees the sub-account after `ttl_seconds`.
- PostgreSQL without Redis: a session-level advisory lock keyed by the sub-account id
  (`pg_try_advisory_lock`). Chosen over `SELECT ... FOR UPDATE` on a lock row because a row
  lock needs a transaction open across the upstream request (idle in transaction for as
  long as the upstream takes) and two extra queries per sync; the advisory lock costs one
  query each way and the sync keeps its own short write transaction. A dead worker's
  connection closes and PostgreSQL frees the lock. The sync's one-statement write releases
  the lock itself (`SyncLock.advisory_key`, then `released`), saving the second query.
- Otherwise (SQLite, the embedded demo: one process): a `threading.Lock` per sub-account.

Policy: skip by default (`wait_seconds=0`). The periodic passes re-sync overlapping windows,
so when a sub-account is already syncing, the second caller has nothing to add: it records a
skipped SyncRun and returns. Callers whose window matters (a backfill from `sync_usage`)
pass `wait_seconds` to wait for the running sync and then do their own.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import connection
from redis.exceptions import RedisError

from core import rawsql

logger = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 15 * 60
# High bits name Flowbill's sync locks among other advisory-lock users; ids stay below 2^48.
ADVISORY_NAMESPACE = 0x464C << 48

_local_locks: dict[int, threading.Lock] = {}
_local_guard = threading.Lock()

_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@cache
def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url)


@dataclass
class SyncLock:
    """What `sub_account_sync_lock` yields: true while this caller holds the lock.

    `advisory_key` is the PostgreSQL advisory lock's key when that is the backend and the
    lock is held: a statement may release it (`pg_advisory_unlock`) and then set `released`,
    so the block's end does not release it a second time."""

    held: bool
    advisory_key: int | None = None
    released: bool = False

    def __bool__(self) -> bool:
        return self.held


@contextmanager
def sub_account_sync_lock(
    *, sub_account_id: int, wait_seconds: float = 0.0, ttl_seconds: int = DEFAULT_TTL_SECONDS
) -> Iterator[SyncLock]:
    """Hold the sync lock of one sub-account for the duration of the block (see module doc)."""
    if settings.REDIS_URL:
        with _redis_lock(sub_account_id, wait_seconds, ttl_seconds) as held:
            yield SyncLock(held)
    elif connection.vendor == "postgresql":
        with _advisory_lock(sub_account_id, wait_seconds) as lock:
            yield lock
    else:
        with _local_lock(sub_account_id, wait_seconds) as held:
            yield SyncLock(held)


@contextmanager
def _redis_lock(sub_account_id: int, wait_seconds: float, ttl_seconds: int) -> Iterator[bool]:
    client = _redis_client(settings.REDIS_URL)
    key = f"flowbill:lock:sync:sub:{sub_account_id}"
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while True:
        if client.set(key, token, nx=True, px=ttl_seconds * 1000):
            break
        if time.monotonic() >= deadline:
            yield False
            return
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
    try:
        yield True
    finally:
        try:
            client.eval(_RELEASE_SCRIPT, 1, key, token)
        except RedisError as exc:
            # The sync itself is done (and committed): Redis going away now must not turn
            # it into a failure. The lock's TTL frees it.
            logger.warning("could not release %s (%s); it expires in %ss", key, exc, ttl_seconds)


@contextmanager
def _advisory_lock(sub_account_id: int, wait_seconds: float) -> Iterator[SyncLock]:
    key = ADVISORY_NAMESPACE | sub_account_id
    deadline = time.monotonic() + wait_seconds
    while not rawsql.fetchone("SELECT pg_try_advisory_lock(%s)", [key])[0]:
        if time.monotonic() >= deadline:
            yield SyncLock(False)
            return
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
    lock = SyncLock(True, advisory_key=key)
    try:
        yield lock
    finally:
        if not lock.released:
            rawsql.fetchone("SELECT pg_advisory_unlock(%s)", [key])


@contextmanager
def _local_lock(sub_account_id: int, wait_seconds: float) -> Iterator[bool]:
    with _local_guard:
        lock = _local_locks.setdefault(sub_account_id, threading.Lock())
    acquired = lock.acquire(timeout=wait_seconds) if wait_seconds > 0 else lock.acquire(False)
    if not acquired:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
