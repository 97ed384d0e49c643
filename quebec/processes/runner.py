"""Runs workers, dispatchers and the scheduler as threads of one process.

The main thread only watches: signals (recorded by the handlers, acted on here), the heartbeat
of this process's own row, memory use, and components that died.
"""

import contextlib
import logging
import os
import signal
import socket
import sys
import time
import uuid

from django.db import DatabaseError

from quebec import maintenance
from quebec.db import close_broken_connections
from quebec.lifecycle import processes
from quebec.processes.dispatcher import Dispatcher
from quebec.processes.memory import MemoryWatch
from quebec.processes.scheduler import Scheduler
from quebec.processes.title import ProcessTitle, describe
from quebec.processes.worker import Worker

logger = logging.getLogger("quebec.runner")

COMPONENTS = ("worker", "dispatcher", "scheduler")
GRACEFUL_SIGNALS = (signal.SIGTERM, signal.SIGINT)
QUIET_SIGNALS = (signal.SIGUSR1, signal.SIGTSTP)
JOIN_MARGIN = 30.0  # seconds beyond shutdown_timeout for deregistering (see DEREGISTER_PATIENCE)
EXIT_RECYCLE = 75  # a planned restart: memory recycling
WATCH_INTERVAL = 0.2  # seconds between the main thread's looks at signals and components


class Runner:
    """Start every configured component, watch them until told to stop, report an exit code.

    Standalone, it registers a process row of its own that its components hang under. As the
    child of a fork-mode supervisor (``supervisor`` given) its components hang under that.
    """

    def __init__(self, settings, quebec, only=COMPONENTS, dashboard=None, static_tasks=None, supervisor=None):
        self.settings = settings
        self.quebec = quebec
        self.dashboard = dashboard
        self.supervisor = supervisor
        self.process = None
        self.components = self._build(only, static_tasks)
        self.workers = [component for component in self.components if isinstance(component, Worker)]
        self.memory = MemoryWatch.from_settings(settings)
        self._recycling = False
        self._parent_pid = os.getppid()
        self._signals = []
        self._title = ProcessTitle()

    def _build(self, only, static_tasks):
        components = []
        if "worker" in only:
            components += [
                Worker(worker, settings=self.settings, quebec=self.quebec) for worker in self.settings.workers
            ]
        if "dispatcher" in only:
            components += [Dispatcher(d, settings=self.settings, quebec=self.quebec) for d in self.settings.dispatchers]
        if "scheduler" in only:
            components.append(Scheduler(static_tasks or {}, settings=self.settings, quebec=self.quebec))
        return components

    def run(self):
        with switch_interval(self.settings.worker_switch_interval if self.workers else None):
            return self._run()

    def _run(self):
        self._install_signal_handlers()
        self._show_title()
        self._process_hook("on_start")
        server = self._serve_dashboard()
        self._register()
        for component in self.components:
            component.supervisor = self.supervisor or self.process
            component.start()
        logger.info("Quebec running %d component(s); SIGTERM or SIGINT to stop", len(self.components))
        exit_code, immediate = self._watch()
        if not immediate:
            self._process_hook("on_shutdown")
        self._stop_components(immediate)
        if server is not None:
            server.shutdown()
        self._deregister()
        self._process_hook("on_stop")
        if any(worker.abandoned for worker in self.workers):
            # Their claims went back to ready and another worker may start them now: end the
            # threads still running them at once instead of letting them carry on.
            logging.shutdown()
            os._exit(exit_code)
        return exit_code

    def _show_title(self):
        roles = [component.title() for component in self.components]
        if self.dashboard:
            roles.append("dashboard")
        self._title.show(describe(roles, self.quebec.using))

    def _process_hook(self, name):
        # In fork mode these belong to the supervisor, which runs them once for the whole tree.
        if self.supervisor is None:
            self.quebec.run_hooks(name)

    def _serve_dashboard(self):
        if not self.dashboard:
            return None
        from quebec.processes.dashboard import serve

        return serve(self.dashboard)

    def _register(self):
        if self.supervisor is not None:
            return
        name = f"supervisor-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.process = processes.register("Supervisor", name, self.quebec.using, {"mode": "threads"})
        maintenance.prune_dead_processes(self.settings, self.quebec, exclude=[self.process.pk])

    def _deregister(self):
        if self.process is None:
            return
        try:
            close_broken_connections(ping=True)  # the main thread's connection may have sat idle for long
            processes.deregister(self.process)
        except DatabaseError:
            logger.exception("Could not remove %s; it will be pruned once its heartbeat is stale", self.process.name)

    def _watch(self):
        """Loop until a reason to stop; returns (exit code, whether to stop immediately)."""
        next_heartbeat = time.monotonic() + self.settings.process_heartbeat_interval
        while True:
            time.sleep(WATCH_INTERVAL)
            self._show_title()
            if (reason := self._stop_reason()) is not None:
                return reason
            if self.process is not None and time.monotonic() >= next_heartbeat:
                next_heartbeat = time.monotonic() + self.settings.process_heartbeat_interval
                self._heartbeat()

    def _stop_reason(self):
        while self._signals:
            signum = self._signals.pop(0)
            if signum in QUIET_SIGNALS:
                self._go_quiet(f"received {signal.Signals(signum).name}")
            else:
                logger.info("Received %s; shutting down", signal.Signals(signum).name)
                return 0, signum == signal.SIGQUIT
        if self.supervisor is not None and os.getppid() != self._parent_pid:
            logger.error("The supervisor (pid %d) is gone; shutting down", self._parent_pid)
            return 0, False
        dead = [component for component in self.components if not component.is_alive()]
        if dead:
            logger.error("%s stopped unexpectedly; shutting down", ", ".join(map(repr, dead)))
            return 1, False
        if self.workers and not self._recycling and self.memory.over_limit():
            self._go_quiet(f"memory above worker_max_rss_mb={self.settings.worker_max_rss_mb}")
            self._recycling = True
        quiet = self.workers and all(worker.quiet for worker in self.workers)
        if quiet and all(worker.drained() for worker in self.workers):
            if self._recycling:
                logger.warning("Drained; exiting with code %d so that a fresh process takes over", EXIT_RECYCLE)
                return EXIT_RECYCLE, False
            if self.settings.quiet_then_exit and self.supervisor is None:
                logger.info("Drained after going quiet; exiting (quiet_then_exit)")
                return 0, False
        return None

    def _go_quiet(self, why):
        logger.info("Going quiet (%s): running jobs finish, no new ones are claimed", why)
        for worker in self.workers:
            worker.go_quiet()

    def _heartbeat(self):
        try:
            close_broken_connections(ping=True)
            self.process.heartbeat(**self.memory.metadata())
        except DatabaseError:
            logger.exception("Heartbeat of %s failed", self.process.name)

    def _stop_components(self, immediate):
        timeout = 0 if immediate else self.settings.shutdown_timeout
        for component in self.components:
            component.stop(timeout)
        deadline = time.monotonic() + timeout + JOIN_MARGIN
        while any(component.is_alive() for component in self.components) and time.monotonic() < deadline:
            time.sleep(WATCH_INTERVAL)
            if not immediate and self._told_to_hurry():
                immediate = True
                for component in self.components:
                    component.stop(0)
                deadline = min(deadline, time.monotonic() + JOIN_MARGIN)
        for component in self.components:
            if component.is_alive():
                logger.error("%r did not stop in time", component)

    def _told_to_hurry(self):
        """Whether a signal received during a graceful stop asks to stop now: SIGQUIT, or a
        second SIGTERM/SIGINT (pressing Ctrl-C again means "now"). A fork-mode child takes
        only SIGQUIT: a terminal's Ctrl-C reaches it besides the SIGTERM its supervisor passes
        on, and the supervisor sends SIGQUIT when it is itself told twice."""
        hurry = False
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGQUIT or (signum in GRACEFUL_SIGNALS and self.supervisor is None):
                logger.warning("Received %s while stopping; stopping now", signal.Signals(signum).name)
                hurry = True
        return hurry

    def _install_signal_handlers(self):
        for signum in (*GRACEFUL_SIGNALS, signal.SIGQUIT, *QUIET_SIGNALS):
            signal.signal(signum, self._record_signal)

    def _record_signal(self, signum, frame):
        # Only record: taking a lock here could deadlock against the interrupted main thread.
        self._signals.append(signum)


@contextlib.contextmanager
def switch_interval(seconds):
    """Let threads take turns with the GIL every ``seconds`` (None: leave Python's 5 ms) while
    this process runs workers (``worker_switch_interval``, off by default).

    A worker's loops spend most of their time waiting for the database, and its pool threads
    running jobs. When a loop's reply arrives it must get the GIL back from a thread running
    Python, which Python asks to let go only after the switch interval. A shorter interval sends
    the next end and claim sooner, at the price of more switches. On a shared two-core machine
    with PostgreSQL, 1 ms drained from x0.9 (with more CPU a job) to x1.3 as fast as 5 ms, no
    more than two identical checkouts differ there. Hence a setting, not a default.
    """
    if seconds is None:
        yield
        return
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
