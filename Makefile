# Everyday commands. `make demo` and `make test` set everything up on a fresh machine.
PY ?= python3
UV_VERSION := 0.13.8
VENV := .venv
UV := .tools/bin/uv
RUN := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never

.PHONY: install demo test lint format migrate run worker beat simulator clean

install: $(VENV)/.synced

.tools/bin/uv:
	$(PY) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | .tools/bin/uv
	$(UV) sync --frozen --python $(PY)
	touch $@

## The demo: migrate, seed, sync from the built-in simulator, bill, serve the admin.
demo: install
	$(RUN) manage.py migrate --noinput
	$(RUN) manage.py demo

## The test suite, with lint and formatting checks. DATABASE_URL picks the database.
test: install lint
	$(RUN) manage.py makemigrations --check --dry-run
	$(RUN) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: install
	$(RUN) manage.py migrate --noinput

run: install
	$(RUN) manage.py runserver 127.0.0.1:8000

worker: install
	$(VENV)/bin/celery -A config worker --loglevel=INFO

beat: install
	$(VENV)/bin/celery -A config beat --loglevel=INFO

simulator: install
	$(RUN) manage.py upstream_simulator --host 127.0.0.1 --port 8765

clean:
	rm -rf var/flowbill.sqlite3 var/media var/mail
