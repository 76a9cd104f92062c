"""The settings and task options the crash drills rely on, checked for every task: a task
is acknowledged only after it ran (a worker killed mid-task leaves its message to be
delivered again), so every one of them must be safe to run twice."""

from config.celery import app


def _flowbill_tasks():
    app.loader.import_default_modules()
    return {
        name: task
        for name, task in app.tasks.items()
        if name.split(".", 1)[0] in {"accounts", "usage", "billing"}
    }


def test_every_task_is_acknowledged_late_and_requeued_when_its_worker_dies():
    tasks = _flowbill_tasks()
    assert len(tasks) >= 10
    early = sorted(name for name, task in tasks.items() if not task.acks_late)
    assert early == []
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1  # a dead worker holds one message at most
