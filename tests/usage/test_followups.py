"""A sync that changed usage queues the configured after-sync tasks with the customer id."""

import pytest
from celery import shared_task
from django.core.exceptions import ImproperlyConfigured

from usage.services.followups import usage_followups_enqueue

calls: list[int] = []


@shared_task(name="tests.usage.record_followup")
def record_followup(*, customer_id: int) -> None:
    calls.append(customer_id)


@pytest.mark.django_db(transaction=True)
def test_named_task_runs_after_commit_with_the_customer_id(settings):
    from django.db import transaction

    settings.FLOWBILL_AFTER_SYNC_TASKS = ["tests.usage.record_followup"]
    calls.clear()
    with transaction.atomic():
        usage_followups_enqueue(customer_id=42)
        assert calls == []  # not before the sync's rows are committed
    assert calls == [42]


@pytest.mark.django_db
def test_unknown_task_name_fails_loudly(settings):
    settings.FLOWBILL_AFTER_SYNC_TASKS = ["billing.tasks.no_such_task"]
    with pytest.raises(ImproperlyConfigured, match="no_such_task"):
        usage_followups_enqueue(customer_id=1)


@pytest.mark.slow
def test_every_configured_after_sync_task_is_registered_in_a_plain_process():
    """Not only in workers: the web process and commands run syncs (and their followups)."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from config.celery import app\n"
        "names = settings.FLOWBILL_AFTER_SYNC_TASKS\n"
        "assert names, 'no after-sync tasks configured'\n"
        "missing = [n for n in names if n not in app.tasks]\n"
        "print('missing:', missing)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "missing: []"


@pytest.mark.django_db(transaction=True)
def test_a_batch_queues_each_customers_followups_once_at_its_end(settings):
    import threading

    from usage.services.followups import usage_followups_batched

    settings.FLOWBILL_AFTER_SYNC_TASKS = ["tests.usage.record_followup"]
    calls.clear()
    with usage_followups_batched():
        usage_followups_enqueue(customer_id=7)
        usage_followups_enqueue(customer_id=3)
        usage_followups_enqueue(customer_id=7)
        assert calls == []
    assert calls == [3, 7]

    # Threads running in a copy of the batch's context note into the same batch.
    import contextvars

    calls.clear()
    with usage_followups_batched():
        threads = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(usage_followups_enqueue,),
                kwargs={"customer_id": 5},
            )
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert calls == []
    assert calls == [5]
