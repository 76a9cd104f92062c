# Everyday commands. `make demo` and `make test` set everything up on a fresh machine.
PY ?= python3
UV_VERSION := 0.13.8
VENV := .venv
UV := .tools/bin/uv
RUN := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never

.PHONY: install demo test test-fast lint format migrate run serve worker beat simulator clean

install: $(VENV)/.synced

.tools/bin/uv:
	$(PY) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | .tools/bin/uv
	$(UV) sync --frozen --python $(PY)
	touch $@

## The demo: migrate, seed, sync from the built-in simulator, bill, then serve the admin
## with a worker and beat (`manage.py serve`). Other ports:
## make demo DEMO_ARGS="--addrport 127.0.0.1:8001 --simulator-port 8766"
demo: install
	$(RUN) manage.py migrate --noinput
	$(RUN) manage.py demo $(DEMO_ARGS)

## The whole test suite, with lint and formatting checks, on every CPU (pytest-xdist: one
## database, Redis db and media folder per worker). DATABASE_URL picks the database.
XDIST ?= -n auto --dist loadgroup
test: install lint
	$(RUN) manage.py makemigrations --check --dry-run
	$(RUN) -m pytest $(XDIST) $(PYTEST_ARGS)

## The edit-test loop: the suite without the tests marked slow, on SQLite, without lint.
test-fast: install
	DATABASE_URL= $(RUN) -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

## ruff, and the import-linter contracts of pyproject.toml (the layers of the house).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: install
	$(RUN) manage.py migrate --noinput

## Web server, Celery worker and beat in one process group, on the embedded broker under
## var/broker/ when CELERY_BROKER_URL is unset (Ctrl-C stops all). SERVE_ARGS="--addrport ..."
serve: install
	$(RUN) manage.py serve $(SERVE_ARGS)

run: install
	$(RUN) manage.py runserver 127.0.0.1:8000

worker: install
	$(VENV)/bin/celery -A config worker --loglevel=INFO

beat: install
	$(VENV)/bin/celery -A config beat --loglevel=INFO

simulator: install
	$(RUN) manage.py upstream_simulator --host 127.0.0.1 --port 8765

clean:
	rm -rf var/flowbill.sqlite3 var/flowbill.sqlite3-wal var/flowbill.sqlite3-shm var/media var/mail var/broker var/celerybeat-schedule*
