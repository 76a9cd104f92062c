"""Deployment: the compose stack, production settings and the health endpoint."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

pytestmark = pytest.mark.slow  # every test here is over 2 s or shares one that is

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_six_services_with_health_checks(compose):
    services = compose["services"]

    assert set(services) == {"postgres", "redis", "web", "worker", "webhooks-worker", "beat"}
    for name, service in services.items():
        assert "healthcheck" in service, name
        assert service.get("restart") == "unless-stopped", name


def test_compose_commands_start_gunicorn_worker_and_beat(compose):
    services = compose["services"]

    assert "gunicorn config.wsgi:application" in services["web"]["command"]
    assert "migrate" in services["web"]["command"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]


def test_compose_runs_webhook_sends_on_their_own_worker(compose):
    """Receivers that hang hold the webhooks worker only: the default worker consumes the
    default queue alone, the webhooks worker the webhooks queue alone, with the prefork pool
    (the one that enforces time limits)."""
    services = compose["services"]

    def queues(command):
        return command[command.index("-Q") + 1].split(",")

    default, webhooks = services["worker"]["command"], services["webhooks-worker"]["command"]
    assert webhooks[:4] == ["celery", "-A", "config", "worker"]
    assert queues(default) == ["celery"]
    assert queues(webhooks) == ["webhooks"]
    assert not any(arg.startswith(("--pool", "-P")) for arg in default + webhooks)


def test_compose_app_services_use_postgres_redis_and_production_mode(compose):
    for name in ("web", "worker", "webhooks-worker", "beat"):
        service = compose["services"][name]
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://"), name
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379"), name
        assert env["DJANGO_DEBUG"] == "0", name
        assert service["env_file"] == ".env", name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_compose_keeps_data_in_named_volumes(compose):
    assert {"pgdata", "redisdata", "media"} <= set(compose["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    assert "media:/app/var/media" in compose["services"]["web"]["volumes"]


def test_env_example_lists_every_variable_the_settings_read():
    settings_src = (ROOT / "config/settings/base.py").read_text()
    example = (ROOT / ".env.example").read_text()
    import re

    read = set(re.findall(r'(?:environ\.get|env_bool|env_list)\(\s*"([A-Z_]+)"', settings_src))
    documented = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))

    assert read, "the regex found no variables"
    assert read <= documented, read - documented


def _manage(*args, env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLOWBILL_"))}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x" * 20 + Fernet.generate_key().decode(),
    "DJANGO_ALLOWED_HOSTS": "billing.example.com",
    "FLOWBILL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
}


def test_check_deploy_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    env = {**PRODUCTION_ENV, "DJANGO_SECRET_KEY": ""}

    result = _manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_healthz_answers_ok(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(("broker", "eager"), [("", "True"), ("redis://127.0.0.1:6379/0", "False")])
def test_tasks_run_in_process_exactly_when_no_broker_is_configured(broker, eager):
    code = (
        "import django; django.setup(); from config.celery import app; "
        "print(app.conf.task_always_eager)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.base", "CELERY_BROKER_URL": broker})

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.stdout.strip() == eager, result.stderr


def test_embedded_defaults_create_the_sqlite_folder_on_a_fresh_clone(tmp_path):
    var_dir = tmp_path / "fresh" / "var"  # does not exist yet, as in a fresh clone
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "FLOWBILL_VAR_DIR": str(var_dir),
        "DATABASE_URL": "",
    }

    result = _manage("migrate", "--noinput", env_overrides=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert (var_dir / "flowbill.sqlite3").stat().st_size > 0
