"""`python -m usage.simulator [--port 8765] [--seed N] ...`: serve until Ctrl-C."""

from usage.simulator.cli import main

main()
