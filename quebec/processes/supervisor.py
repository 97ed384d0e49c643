"""Fork mode (``QUEBEC_SUPERVISOR=1``): a supervisor process forks and watches its children.

Each ``workers[]`` entry of queue.yml gets ``processes`` worker children, each ``dispatchers[]``
entry as many dispatcher children, and one scheduler child runs (always: tasks may be added
from code at any time). Every child is a ``Runner`` of one component. A child that dies has its
jobs handled as ``ProcessExitError`` (or released) and is forked again; exit code 75 is a
planned recycle.
"""

import dataclasses
import logging
import os
import signal
import socket
import time
import uuid

from django.db import DatabaseError, connections

from quebec import maintenance
from quebec.db import close_broken_connections
from quebec.errors import ProcessExitError
from quebec.lifecycle import processes
from quebec.models import Process
from quebec.processes.runner import EXIT_RECYCLE, GRACEFUL_SIGNALS, QUIET_SIGNALS, WATCH_INTERVAL, Runner
from quebec.processes.title import ProcessTitle, describe

logger = logging.getLogger("quebec.supervisor")

STABLE_UPTIME = 60.0  # a child that ran this long before dying was not crash-looping
CRASHES_BEFORE_BACKOFF = 3
MAX_BACKOFF = 60.0
KILL_GRACE = 5.0  # seconds between SIGQUIT and SIGKILL for children that will not stop


def exit_description(code):
    """How a child exited, from ``os.waitstatus_to_exitcode``: "signal SIGKILL" or "code 1"."""
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"


@dataclasses.dataclass
class Slot:
    """One child to keep running: its component and the settings it runs with."""

    kind: str
    settings: object
    pid: int | None = None
    crashes: int = 0  # crashes in a row, each soon after its fork
    forked_at: float = 0.0
    fork_at: float = 0.0  # when to fork it again (crash-loop backoff)


class Supervisor:
    def __init__(self, settings, quebec, only, static_tasks, dashboard=None):
        self.settings = settings
        self.quebec = quebec
        self.static_tasks = static_tasks
        self.dashboard = dashboard
        self.slots = self._plan(only)
        self.process = None
        self.quiet = False
        self._signals = []
        # Children that exited, by pid, with why, until their jobs are dealt with: kept across
        # a failed attempt (the database away, a deadlock), since the pid is reaped only once.
        self._exited = {}

    def _plan(self, only):
        slots = []
        if "worker" in only:
            for entry in self.settings.workers:
                one = dataclasses.replace(self.settings, workers=(entry,))
                slots += [Slot("worker", one) for _ in range(entry.processes)]
        if "dispatcher" in only:
            for entry in self.settings.dispatchers:
                one = dataclasses.replace(self.settings, dispatchers=(entry,))
                slots += [Slot("dispatcher", one) for _ in range(entry.processes)]
        if "scheduler" in only:  # always: tasks may be added from code at any time
            slots.append(Slot("scheduler", self.settings))
        if self.dashboard:  # a child of its own: the supervisor forks with no threads and no open socket
            slots.append(Slot("dashboard", self.settings))
        return slots

    def run(self):
        for signum in (*GRACEFUL_SIGNALS, signal.SIGQUIT, *QUIET_SIGNALS, signal.SIGCHLD):
            signal.signal(signum, self._record_signal)
        ProcessTitle().show(describe(["supervisor"], self.quebec.using))
        self.quebec.run_hooks("on_start")
        name = f"supervisor-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.process = processes.register("Supervisor", name, self.quebec.using, {"mode": "fork"})
        maintenance.prune_dead_processes(self.settings, self.quebec, exclude=[self.process.pk])
        logger.info("Supervisor %s (pid %s) forking %d child process(es)", name, os.getpid(), len(self.slots))
        immediate = self._supervise()
        if not immediate:
            self.quebec.run_hooks("on_shutdown")
        self._stop_children(immediate)
        close_broken_connections(ping=True)
        processes.deregister(self.process)
        self.quebec.run_hooks("on_stop")
        return 0

    def _supervise(self):
        """Keep the children running until a stop signal; returns whether it was SIGQUIT."""
        next_heartbeat = next_prune = 0.0
        while True:
            # Signals first: children that exit because the whole group was told to stop must
            # not be forked again.
            while self._signals:
                signum = self._signals.pop(0)
                if signum in QUIET_SIGNALS:
                    self.quiet = True  # remembered, so a worker forked again later starts quiet
                    self._signal_children(signum, kinds=("worker",))
                elif signum != signal.SIGCHLD:
                    logger.info("Received %s; stopping the children", signal.Signals(signum).name)
                    return signum == signal.SIGQUIT
            self._guarded(self._reap)
            self._guarded(self._handle_exited)
            self._fork_missing()
            if time.monotonic() >= next_heartbeat:
                next_heartbeat = time.monotonic() + self.settings.process_heartbeat_interval
                self._guarded(self._heartbeat)
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + self.settings.process_alive_threshold / 2
                self._guarded(maintenance.prune_dead_processes, self.settings, self.quebec, exclude=[self.process.pk])
            time.sleep(WATCH_INTERVAL)

    def _heartbeat(self):
        close_broken_connections(ping=True)
        self.process.heartbeat()

    def _guarded(self, function, *args, **kwargs):
        """Run a database step of the loop; an outage is logged and the loop carries on."""
        try:
            function(*args, **kwargs)
        except DatabaseError:
            logger.exception("Supervisor: database error; carrying on")
            close_broken_connections()

    def _fork_missing(self):
        for slot in self.slots:
            if slot.pid is None and time.monotonic() >= slot.fork_at:
                slot.forked_at = time.monotonic()
                slot.pid = self._fork(slot)

    def _fork(self, slot):
        connections.close_all()  # a child must never share the parent's database connections
        pid = os.fork()
        if pid:
            logger.info("Forked %s process %d", slot.kind, pid)
            return pid
        code = 1
        try:
            for signum in (*GRACEFUL_SIGNALS, signal.SIGQUIT, *QUIET_SIGNALS, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            dashboard = self.dashboard if slot.kind == "dashboard" else None
            runner = Runner(
                slot.settings,
                self.quebec,
                only=(slot.kind,),
                static_tasks=self.static_tasks,
                supervisor=self.process,
                dashboard=dashboard,
            )
            if self.quiet:
                for worker in runner.workers:
                    worker.go_quiet()
            code = runner.run()
        except BaseException:
            logger.exception("%s process %d crashed", slot.kind, os.getpid())
        finally:
            logging.shutdown()
            os._exit(code)

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((slot for slot in self.slots if slot.pid == pid), None)
            if slot is not None:
                self._child_exited(slot, pid, status)

    def _child_exited(self, slot, pid, status):
        slot.pid = None
        code = os.waitstatus_to_exitcode(status)
        how = exit_description(code)
        self._exited[pid] = f"{slot.kind} process {pid} exited with {how}"
        if code == EXIT_RECYCLE:
            logger.info("%s process %d recycled itself; forking a fresh one", slot.kind, pid)
            return
        logger.error("%s process %d exited with %s; forking it again", slot.kind, pid, how)
        now = time.monotonic()
        slot.crashes = 1 if now - slot.forked_at >= STABLE_UPTIME else slot.crashes + 1
        if slot.crashes > CRASHES_BEFORE_BACKOFF:
            delay = min(2 ** (slot.crashes - CRASHES_BEFORE_BACKOFF), MAX_BACKOFF)
            logger.error(
                "%s process keeps crashing (%d times in a row); waiting %ds before the next fork",
                slot.kind,
                slot.crashes,
                delay,
            )
            slot.fork_at = now + delay

    def _handle_exited(self):
        """Deal with the jobs of each child that exited; those not dealt with stay for the next
        turn of the loop."""
        for pid, reason in list(self._exited.items()):
            self._handle_jobs_of(pid, reason)
            del self._exited[pid]

    def _handle_jobs_of(self, pid, reason):
        close_broken_connections(ping=True)  # may raise DatabaseError: the caller is guarded
        children = Process.objects.using(self.quebec.using).filter(supervisor=self.process, pid=pid)
        for child in children:
            maintenance.remove_process(child, ProcessExitError(reason), self.settings, self.quebec)

    def _stop_children(self, immediate):
        self._signal_children(signal.SIGQUIT if immediate else signal.SIGTERM)
        deadline = time.monotonic() + (0 if immediate else self.settings.shutdown_timeout) + KILL_GRACE * 2
        escalated = immediate
        while any(slot.pid for slot in self.slots):
            self._reap_stopping()
            if not escalated and (self._told_to_hurry() or time.monotonic() > deadline - KILL_GRACE):
                self._signal_children(signal.SIGQUIT)
                escalated = True
                deadline = min(deadline, time.monotonic() + KILL_GRACE)
            if time.monotonic() > deadline:
                self._signal_children(signal.SIGKILL)
            time.sleep(0.05)

    def _told_to_hurry(self):
        """Whether a signal received during a graceful stop asks to stop now: SIGQUIT, or a
        second SIGTERM/SIGINT (pressing Ctrl-C again means "now")."""
        hurry = False
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGQUIT or signum in GRACEFUL_SIGNALS:
                logger.warning("Received %s while stopping; stopping the children now", signal.Signals(signum).name)
                hurry = True
        return hurry

    def _reap_stopping(self):
        for slot in self.slots:
            if slot.pid is None:
                continue
            pid, status = os.waitpid(slot.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                if code != 0:
                    self._exited[pid] = f"{slot.kind} process {pid} exited with {exit_description(code)} while stopping"
                slot.pid = None
        if self._exited:
            self._guarded(self._handle_exited)

    def _signal_children(self, signum, kinds=None):
        for slot in self.slots:
            if slot.pid is not None and (kinds is None or slot.kind in kinds):
                try:
                    os.kill(slot.pid, signum)
                except ProcessLookupError:
                    pass

    def _record_signal(self, signum, frame):
        # Only record: taking a lock here could deadlock against the interrupted main thread.
        self._signals.append(signum)
