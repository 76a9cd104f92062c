"""The embedded runtime: `manage.py serve` runs the web server, a Celery worker and beat
together on a broker that needs no server (kombu's filesystem transport under `var/broker/`).

- `broker.py`: when the embedded broker is chosen and its folders and options;
- `supervisor.py`: the process group (start, watch, stop on Ctrl-C or SIGTERM);
- `management/commands/serve.py`: the command.

Production (Redis, separate web, worker and beat containers) uses none of it.
"""
