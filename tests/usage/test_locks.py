"""The sync lock: one holder per sub-account, skip by default, wait when asked."""

import threading
import time

import pytest
from django.db import connection

from usage.locks import sub_account_sync_lock


def _contend(wait_seconds):
    """Hold the lock 0.3 s in one thread while another tries; return what the other got."""
    got, entered = [], threading.Event()

    def holder():
        try:
            with sub_account_sync_lock(sub_account_id=42) as held:
                assert held
                entered.set()
                time.sleep(0.3)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    entered.wait(5)
    with sub_account_sync_lock(sub_account_id=42, wait_seconds=wait_seconds) as held:
        got.append(bool(held))
    thread.join()
    with sub_account_sync_lock(sub_account_id=42) as held:  # released after both
        got.append(bool(held))
    return got


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["redis", "database"])
def test_second_caller_skips_by_default_and_waits_when_asked(request, settings, backend):
    """ "database": a threading lock on SQLite, an advisory lock on PostgreSQL."""
    settings.REDIS_URL = request.getfixturevalue("redis_url") if backend == "redis" else ""
    assert _contend(0) == [False, True]
    assert _contend(5) == [True, True]


@pytest.mark.django_db
def test_other_sub_accounts_are_not_blocked(settings):
    settings.REDIS_URL = ""
    lock_1 = sub_account_sync_lock(sub_account_id=1)
    lock_2 = sub_account_sync_lock(sub_account_id=2)
    with lock_1 as first, lock_2 as second:
        assert (bool(first), bool(second)) == (True, True)
