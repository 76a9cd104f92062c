"""The embedded runtime's processes: the web server, one Celery worker and beat, started
together, watched, and stopped together.

The children run in one process group of their own (not the terminal's), so a Ctrl-C
reaches only the supervisor, which passes it on once: SIGTERM to the group, the worker's
warm shutdown (it finishes its running tasks and puts the messages it held back into the
queue folder), beat saves its schedule, the web server stops. After `stop_timeout`
seconds, or at a second Ctrl-C, the group is killed. When one child ends by itself (a port
already taken, a crash) the others are stopped too. On Linux every child also gets SIGTERM
should the supervisor itself die (`PR_SET_PDEATHSIG`), so none is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Seconds the worker gets to finish its running tasks after the first Ctrl-C or SIGTERM.
DEFAULT_STOP_TIMEOUT = 30.0
#: Seconds between two prunes of the broker's processed messages.
PRUNE_EVERY = 600.0
_POLL = 0.2

# Runs in each child before the real command (exec'd in its place): asks Linux to send it
# SIGTERM when the supervisor dies, then checks the supervisor did not die already.
_LAUNCHER = """
import os, signal, sys
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass  # not Linux: the process group and the supervisor's stop still apply
if os.getppid() != int(os.environ["FLOWBILL_RUNTIME_SUPERVISOR_PID"]):
    sys.exit(1)
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


@dataclass(frozen=True)
class RuntimeProcess:
    name: str
    args: tuple[str, ...]  # the arguments to the Python interpreter


def runtime_processes(
    *,
    addrport: str,
    queues: Sequence[str],
    beat_schedule: Path,
    concurrency: int,
    manage_py: Path,
    loglevel: str = "INFO",
) -> list[RuntimeProcess]:
    """The web server (Django's, as `make run`), one worker consuming every queue with a
    threads pool (a few threads share the SQLite file well; time limits are not enforced
    by it, as in development), and beat with its schedule file under var/."""
    worker = ["-m", "celery", "-A", "config", "worker", "--pool=threads"]
    worker += [f"--concurrency={concurrency}", "-Q", ",".join(queues), "--hostname=embedded@%h"]
    worker += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    beat = ["-m", "celery", "-A", "config", "beat", f"--schedule={beat_schedule}"]
    return [
        RuntimeProcess("web", (str(manage_py), "runserver", addrport, "--noreload")),
        RuntimeProcess("worker", (*worker, f"--loglevel={loglevel}")),
        RuntimeProcess("beat", (*beat, f"--loglevel={loglevel}")),
    ]


def ready_url(addrport: str) -> str:
    """The web server's readiness URL for `addrport` (`8000`, `host:8000`, `[::1]:8000`)."""
    host, _, port = addrport.rpartition(":")
    if not host or host in {"0.0.0.0", "0", "[::]"}:  # noqa: S104 (a bind address, read)
        host = "127.0.0.1"
    return f"http://{host}:{port}/readyz"


def web_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own URL)
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Supervisor:
    """Starts the processes, waits until they end or a signal arrives, stops them all."""

    def __init__(
        self,
        processes: Sequence[RuntimeProcess],
        *,
        env: dict[str, str],
        cwd: Path,
        write: Callable[[str], None],
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        ready: Callable[[], bool] | None = None,
        on_ready: Callable[[], None] | None = None,
        housekeeping: Callable[[], None] | None = None,
    ):
        self.processes = list(processes)
        self.env = {**env, "FLOWBILL_RUNTIME_SUPERVISOR_PID": str(os.getpid())}
        self.cwd = cwd
        self.write = write
        self.stop_timeout = stop_timeout
        self.ready, self.on_ready = ready, on_ready
        self.housekeeping = housekeeping
        self.children: dict[str, subprocess.Popen] = {}
        self._signals = 0

    def _on_signal(self, signum, frame) -> None:
        self._signals += 1

    def _start(self) -> None:
        group = 0  # the first child leads a new process group, the others join it
        for process in self.processes:
            child = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                [sys.executable, "-c", _LAUNCHER, *process.args],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                process_group=group,
            )
            group = group or child.pid
            self.children[process.name] = child
            self.write(f"started {process.name} (pid {child.pid})")
        self.group = group

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.group, signum)

    def run(self) -> int:
        """Runs until every child has ended; returns 0 after a requested stop, else 1."""
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in handled}
        self.group = 0
        try:
            self._start()
            return self._watch()
        except BaseException:
            if self.group:
                self._signal_group(signal.SIGKILL)
            raise
        finally:
            for child in self.children.values():
                if child.poll() is None:
                    child.wait()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _watch(self) -> int:
        stop_deadline = None
        requested = False
        is_ready = self.ready is None
        next_housekeeping = time.monotonic()
        while True:
            now = time.monotonic()
            ended = {n: c.returncode for n, c in self.children.items() if c.poll() is not None}
            if len(ended) == len(self.children):
                return 0 if requested else 1
            if stop_deadline is None:
                if self._signals:
                    requested = True
                    self.write("stopping web, worker and beat (Ctrl-C again to kill them now)")
                elif ended:
                    name, code = next(iter(ended.items()))
                    self.write(f"{name} ended (exit code {code}); stopping the others")
                if requested or ended:
                    self._signal_group(signal.SIGTERM)
                    stop_deadline = now + self.stop_timeout
            elif self._signals > (1 if requested else 0) or now >= stop_deadline:
                self.write("killing what is left")
                self._signal_group(signal.SIGKILL)
                stop_deadline = float("inf")
            if stop_deadline is None:
                if not is_ready and self.ready():
                    is_ready = True
                    if self.on_ready:
                        self.on_ready()
                if self.housekeeping and now >= next_housekeeping:
                    self.housekeeping()
                    next_housekeeping = now + PRUNE_EVERY
            time.sleep(_POLL)
