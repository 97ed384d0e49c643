"""Runs workers and dispatchers as threads of one process, and turns signals into shutdowns."""

import logging
import os
import signal
import threading

from quebec.processes.dispatcher import Dispatcher
from quebec.processes.scheduler import Scheduler
from quebec.processes.worker import Worker

logger = logging.getLogger("quebec.runner")

COMPONENTS = ("worker", "dispatcher", "scheduler")
GRACEFUL_SIGNALS = (signal.SIGTERM, signal.SIGINT)
JOIN_MARGIN = 30.0  # seconds beyond shutdown_timeout for deregistering (see DEREGISTER_PATIENCE)


class Runner:
    """Start every configured component, wait for a signal, stop them, report an exit code."""

    def __init__(self, settings, quebec, only=COMPONENTS, dashboard=None, static_tasks=None):
        self.settings = settings
        self.dashboard = dashboard
        self.components = []
        if "worker" in only:
            self.components += [Worker(worker, settings=settings, quebec=quebec) for worker in settings.workers]
        if "dispatcher" in only:
            self.components += [Dispatcher(d, settings=settings, quebec=quebec) for d in settings.dispatchers]
        if "scheduler" in only:
            self.components.append(Scheduler(static_tasks or {}, settings=settings, quebec=quebec))
        self._received = None
        self._event = threading.Event()

    def run(self):
        self._install_signal_handlers()
        server = None
        if self.dashboard:
            from quebec.processes.dashboard import serve

            server = serve(self.dashboard)
        for component in self.components:
            component.start()
        logger.info("Quebec running %d component(s); SIGTERM or SIGINT to stop", len(self.components))
        exit_code = self._wait()
        self._stop_components(immediate=self._received == signal.SIGQUIT)
        if server is not None:
            server.shutdown()
        if any(getattr(component, "abandoned", 0) for component in self.components):
            # Their claims went back to ready and another worker may start them now: end the
            # threads still running them at once instead of letting them carry on.
            logging.shutdown()
            os._exit(exit_code)
        return exit_code

    def _wait(self):
        # Signal handlers only record the signal and set the event; this loop acts on it.
        while not self._event.wait(0.5):
            dead = [component for component in self.components if not component.is_alive()]
            if dead:
                logger.error("%s stopped unexpectedly; shutting down", ", ".join(map(repr, dead)))
                return 1
        logger.info("Received %s; shutting down", signal.Signals(self._received).name)
        return 0

    def _stop_components(self, immediate):
        timeout = 0 if immediate else self.settings.shutdown_timeout
        for component in self.components:
            component.stop(timeout)
        for component in self.components:
            if not component.join(timeout + JOIN_MARGIN):
                logger.error("%r did not stop in time", component)

    def _install_signal_handlers(self):
        for signum in (*GRACEFUL_SIGNALS, signal.SIGQUIT):
            signal.signal(signum, self._record_signal)

    def _record_signal(self, signum, frame):
        self._received = signum
        self._event.set()
