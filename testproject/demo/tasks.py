"""A ``django.tasks`` task: Django's own API, run by Quebec's workers like the job classes."""

import logging

from django.tasks import task

logger = logging.getLogger("demo")


@task(takes_context=True)
def resize_image(context, name, width):
    logger.info("Resizing %s to %dpx (task %s, attempt %d)", name, width, context.task_result.id, context.attempt)
    return {"name": name, "width": width}
