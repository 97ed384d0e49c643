"""The scheduler enqueues each due run of every recurring task, once across all schedulers."""

import logging
from datetime import timedelta

from django.db import DatabaseError
from django.utils import timezone

from quebec.models import RecurringTask
from quebec.processes.poller import Poller
from quebec.schedule import ScheduleError

logger = logging.getLogger("quebec.scheduler")

# Longest sleep between looks at the tasks table, so that tasks added, changed or paused by
# other processes are seen, and a jump of the wall clock is noticed, within this many seconds.
MAX_SLEEP = 5.0
MIN_SLEEP = 0.01


class Scheduler(Poller):
    """Sleeps until the next run is due, enqueues it, and repeats.

    Runs missed while no scheduler was running are not replayed, except the latest one of a
    task with ``catch_up``. If the clock jumps forward past several runs, only the latest is
    enqueued. Every run is recorded under a unique (task, run time) row, so several schedulers
    never enqueue the same run twice.
    """

    kind = "Scheduler"
    running = set()  # schedulers of this process, woken when code changes a task

    def __init__(self, static_tasks, *, settings, quebec):
        super().__init__(polling_interval=MAX_SLEEP, settings=settings, quebec=quebec)
        self.static_tasks = static_tasks
        self._cursors = {}  # task key -> (schedule text, time of the last run considered)

    @classmethod
    def wake_all(cls):
        for scheduler in list(cls.running):
            scheduler.wake()

    def metadata(self):
        return {**super().metadata(), "static_tasks": len(self.static_tasks)}

    def register(self):
        super().register()
        RecurringTask.objects.using(self.using).sync_static(self.static_tasks)
        Scheduler.running.add(self)
        logger.info("%s: %d recurring task(s) configured", self.name, len(self.static_tasks))

    def shutdown(self):
        Scheduler.running.discard(self)
        super().shutdown()

    def poll(self):
        now = timezone.now()
        tasks = list(RecurringTask.objects.using(self.using).active())
        self._cursors = {task.key: self._cursors[task.key] for task in tasks if task.key in self._cursors}
        next_due = now.timestamp() + MAX_SLEEP
        for task in tasks:
            try:
                next_due = min(next_due, self._enqueue_due(task, now).timestamp())
            except ScheduleError as error:
                logger.error("%s: recurring task %r has an invalid schedule: %s", self.name, task.key, error)
            except DatabaseError:
                raise  # the poller logs it and retries; the run is still due then
            except Exception:  # one broken task (a renamed class...) must not stop the others
                logger.exception("%s: could not enqueue recurring task %r", self.name, task.key)
        self.polling_interval = min(max(next_due - timezone.now().timestamp(), MIN_SLEEP), MAX_SLEEP)
        return False

    def _enqueue_due(self, task, now):
        """Enqueue the task's latest due run, if any; returns the time of its next run."""
        schedule = task.parsed_schedule
        cursor = self._cursor(task, schedule, now)
        due = None
        upcoming = schedule.next_after(cursor)
        while upcoming <= now:
            due, upcoming = upcoming, schedule.next_after(upcoming)
        if due is not None:
            try:
                if task.enqueue(due) is not None:
                    logger.info("%s: enqueued %s for %s", self.name, task.key, due.isoformat())
            except DatabaseError:
                raise  # the cursor stays: the run is tried again on the next poll
            except Exception:
                self._cursors[task.key] = (task.schedule, due)  # logged by poll(); this run is lost
                raise
            self._cursors[task.key] = (task.schedule, due)
        return upcoming

    def _cursor(self, task, schedule, now):
        text, cursor = self._cursors.get(task.key, (None, None))
        if text == task.schedule and cursor <= now:
            return cursor
        # A task seen for the first time (or changed, resumed, or the clock went back): start
        # from now, or just before the latest run for a task that catches up.
        start = schedule.previous_before(now) if task.catch_up else now
        if task.catch_up:
            start = start - timedelta(microseconds=1)
        self._cursors[task.key] = (task.schedule, start)
        return start
