"""The task the django-tasks-db workload enqueues (a module of its own, so the worker can import it)."""

from django.tasks import task


@task
def noop():
    pass
