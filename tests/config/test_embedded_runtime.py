"""The embedded runtime (`manage.py serve`): the broker chosen only in embedded mode, and the
web server, worker and beat started, stopped and restarted together."""

import contextlib
import importlib.util
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings

from config.runtime.broker import (
    EMBEDDED_BROKER_URL,
    PROCESSED_KEEP_SECONDS,
    celery_broker_url,
    embedded_broker_transport_options,
    processed_messages_prune,
)
from config.runtime.supervisor import ready_url, runtime_processes

ROOT = Path(__file__).resolve().parents[2]


def test_broker_url_is_the_configured_one_else_embedded_only_when_asked():
    assert celery_broker_url(configured="redis://r:6379/0", embedded=True) == "redis://r:6379/0"
    assert celery_broker_url(configured="redis://r:6379/0", embedded=False) == "redis://r:6379/0"
    assert celery_broker_url(configured="", embedded=True) == EMBEDDED_BROKER_URL
    assert celery_broker_url(configured="", embedded=False) == ""


def _settings_module(monkeypatch, tmp_path, **env):
    """A fresh copy of config/settings/base.py evaluated under `env`."""
    for name in ("CELERY_BROKER_URL", "FLOWBILL_EMBEDDED_RUNTIME", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWBILL_VAR_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(
        "settings_probe", ROOT / "config/settings/base.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_run_tasks_in_process_without_the_embedded_runtime(monkeypatch, tmp_path):
    settings = _settings_module(monkeypatch, tmp_path)

    assert settings.CELERY_BROKER_URL == ""
    assert settings.CELERY_TASK_ALWAYS_EAGER is True
    assert "data_folder_in" not in settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert not (tmp_path / "broker").exists()


def test_settings_queue_to_the_filesystem_broker_under_var_in_embedded_mode(monkeypatch, tmp_path):
    settings = _settings_module(monkeypatch, tmp_path, FLOWBILL_EMBEDDED_RUNTIME="1")

    assert settings.CELERY_BROKER_URL == EMBEDDED_BROKER_URL
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "broker/queue")
    assert options["processed_folder"] == str(tmp_path / "broker/processed")
    assert (tmp_path / "broker/queue").is_dir()
    assert settings.REDIS_URL == ""


def test_settings_keep_a_configured_broker_even_in_embedded_mode(monkeypatch, tmp_path):
    settings = _settings_module(
        monkeypatch,
        tmp_path,
        FLOWBILL_EMBEDDED_RUNTIME="1",
        CELERY_BROKER_URL="redis://redis:6379/0",
    )

    assert settings.CELERY_BROKER_URL == "redis://redis:6379/0"
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    assert "data_folder_in" not in settings.CELERY_BROKER_TRANSPORT_OPTIONS


def test_test_settings_stay_in_process():
    from django.conf import settings

    assert settings.FLOWBILL_EMBEDDED_RUNTIME is False
    assert settings.CELERY_TASK_ALWAYS_EAGER is True
    assert settings.CELERY_BROKER_URL == ""


def test_the_worker_consumes_every_queue_with_a_threads_pool(settings, tmp_path):
    processes = runtime_processes(
        addrport="127.0.0.1:8123",
        queues=[queue.name for queue in settings.CELERY_TASK_QUEUES],
        beat_schedule=tmp_path / "celerybeat-schedule",
        concurrency=2,
        manage_py=ROOT / "manage.py",
    )

    by_name = {process.name: process.args for process in processes}
    assert set(by_name) == {"web", "worker", "beat"}
    assert by_name["web"][1:3] == ("runserver", "127.0.0.1:8123")
    worker = by_name["worker"]
    assert worker[worker.index("-Q") + 1] == "celery,webhooks"
    assert "--pool=threads" in worker
    assert "--concurrency=2" in worker
    assert f"--schedule={tmp_path / 'celerybeat-schedule'}" in by_name["beat"]


def test_ready_url_probes_loopback_for_a_wildcard_address():
    assert ready_url("127.0.0.1:8001") == "http://127.0.0.1:8001/readyz"
    assert ready_url("0.0.0.0:8002") == "http://127.0.0.1:8002/readyz"
    assert ready_url("8003") == "http://127.0.0.1:8003/readyz"


def test_processed_messages_older_than_a_day_are_pruned(tmp_path):
    options = embedded_broker_transport_options(tmp_path)
    processed = Path(options["processed_folder"])
    now = time.time()
    old, recent = processed / "1_a.celery.msg", processed / "2_b.celery.msg"
    old.write_text("{}")
    recent.write_text("{}")
    os.utime(old, (now - PROCESSED_KEEP_SECONDS - 60,) * 2)
    os.utime(recent, (now - PROCESSED_KEEP_SECONDS + 60,) * 2)

    assert processed_messages_prune(tmp_path, now=now) == 1
    assert not old.exists()
    assert recent.exists()


# --- the runtime itself, as processes ---------------------------------------------------

PURGE_TASK = "idempotency.tasks.idempotency_records_purge_task"
START_TIMEOUT = 120  # three Django processes starting on a busy 2-CPU machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "FLOWBILL_", "CELERY_"))
        and k not in {"DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "EMAIL_HOST"}
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", FLOWBILL_VAR_DIR=str(var_dir))
    return env


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(predicate, timeout: float, what: str, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"serve ended (code {process.returncode}) before {what}")
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _old_idempotency_record(db: Path, key: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO idempotency_idempotencyrecord (scope, key, method, path, request_hash,"
            " response_body, response_headers, created_at)"
            " VALUES ('probe', ?, 'POST', '/x', 'h', '', '{}', '2020-01-01 00:00:00')",
            (key,),
        )


def _record_count(db: Path) -> int:
    with sqlite3.connect(db, timeout=20) as conn:
        return conn.execute("SELECT COUNT(*) FROM idempotency_idempotencyrecord").fetchone()[0]


def _producer(var_dir: Path) -> Celery:
    """A Celery client on the same folders, as the web server publishes."""
    app = Celery("probe", broker=EMBEDDED_BROKER_URL, set_as_current=False)
    app.conf.broker_transport_options = embedded_broker_transport_options(var_dir / "broker")
    return app


def _serve(var_dir: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--addrport", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=_env(var_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill(process: subprocess.Popen) -> None:
    """After a failure: nothing left running."""
    if process.poll() is None:
        for pid in _descendants(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait()


def _stop(process: subprocess.Popen, signum: int) -> None:
    children = _descendants(process.pid)
    assert len(children) >= 3  # web, worker, beat
    process.send_signal(signum)
    assert process.wait(timeout=20) == 0
    _wait(lambda: not any(_alive(pid) for pid in children), 5, "every child to end")


@pytest.mark.slow
def test_serve_runs_queued_tasks_stops_cleanly_and_resumes_what_was_queued(tmp_path):
    var_dir = tmp_path / "var"
    db = var_dir / "flowbill.sqlite3"
    subprocess.run(  # the purge task's table is all this test needs
        [sys.executable, "manage.py", "migrate", "idempotency", "--noinput"],
        cwd=ROOT,
        env=_env(var_dir),
        check=True,
        capture_output=True,
        timeout=120,
    )
    producer = _producer(var_dir)
    queue = var_dir / "broker/queue"

    # First start: a task queued while it runs is executed by its worker.
    port = _free_port()
    serve = _serve(var_dir, port)
    try:
        _wait(lambda: _ready(ready_url(f"127.0.0.1:{port}")), START_TIMEOUT, "/readyz", serve)
        _old_idempotency_record(db, "first")
        producer.send_task(PURGE_TASK, queue="celery")
        _wait(lambda: _record_count(db) == 0, 30, "the worker to run the task", serve)
        # beat runs, its schedule under var/ (dbm adds its suffixes)
        _wait(lambda: list(var_dir.glob("celerybeat-schedule*")), 30, "beat's file", serve)
        # A task the worker holds for later is put back into the folder at the stop.
        later = producer.send_task(PURGE_TASK, queue="celery", countdown=3600)
        _wait(lambda: not list(queue.glob("*.celery.msg")), 30, "the worker to take it", serve)

        _stop(serve, signal.SIGINT)
    finally:
        _kill(serve)
    held = [json.loads(path.read_text())["headers"] for path in queue.glob("*.celery.msg")]
    assert later.id in [headers["id"] for headers in held]
    # Anything else held is beat's: a scheduled task published at the stop, or one waiting
    # for its retry (this test's database has only the purge task's table).
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {h["task"] for h in held if h["id"] != later.id} <= scheduled

    # Stopped: queue a task; the next start runs it.
    _old_idempotency_record(db, "second")
    producer.send_task(PURGE_TASK, queue="celery")
    assert _record_count(db) == 1

    port = _free_port()
    serve = _serve(var_dir, port)
    try:
        _wait(lambda: _record_count(db) == 0, START_TIMEOUT, "the queued task to run", serve)
        _wait(lambda: _ready(ready_url(f"127.0.0.1:{port}")), START_TIMEOUT, "/readyz", serve)
        _stop(serve, signal.SIGTERM)
    finally:
        _kill(serve)


def test_the_embedded_transport_writes_each_message_whole_then_renames_it(tmp_path):
    """A worker never takes a message file still being written: it is written under a
    `.partial-` name (never taken) and renamed into place."""
    from kombu import Connection

    from config.runtime.broker import EMBEDDED_BROKER_URL, embedded_broker_transport_options

    options = embedded_broker_transport_options(tmp_path)
    queue_dir = tmp_path / "queue"
    (queue_dir / ".partial-0000").write_bytes(b"")  # a put in progress elsewhere
    with Connection(EMBEDDED_BROKER_URL, transport_options=options) as conn:
        queue = conn.SimpleQueue("drill")
        queue.put({"n": 1})
        names = sorted(p.name for p in queue_dir.iterdir())
        assert names[0] == ".partial-0000" and names[1].endswith(".drill.msg")
        assert len(names) == 2  # no partial file of ours left behind
        message = queue.get(timeout=2)
        assert message.payload == {"n": 1}
        message.ack()
        queue.close()
    assert [p.name for p in queue_dir.iterdir()] == [".partial-0000"]  # ignored, not taken
