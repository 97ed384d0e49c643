"""What the dashboard shows of batches: their progress bars, callbacks, and the batch of a job.

A batch's pages read its counters, never its members: the members are the jobs list filtered
by ``?batch=`` (``members_url``).
"""

import dataclasses

from django.urls import reverse as django_reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from quebec.batches import batch_of
from quebec.dashboard import databases, lists
from quebec.models import Batch
from quebec.models.batches import CALLBACKS

STATUS_LABELS = lists.BATCH_STATUS_LABELS
CALLBACK_LABELS = {
    "on_finish": gettext_lazy("on finish"),
    "on_success": gettext_lazy("on success"),
    "on_failure": gettext_lazy("on failure"),
}


@dataclasses.dataclass
class CallbackView:
    """One callback of a batch as its pages show it."""

    name: str
    class_name: str
    state: str  # "fired", "waiting" (the batch runs) or "not_due" (the batch ended otherwise)
    job_id: int | None  # the job its firing enqueued

    @property
    def label(self):
        return CALLBACK_LABELS[self.name]

    @property
    def state_label(self):
        if self.state == "fired":
            return _("fired")
        return _("waiting") if self.state == "waiting" else _("not due")


def callbacks(batch, class_names):
    """The callbacks of ``batch``, given their class names ({name: class name or None}), in the
    order they fire, and whether each has."""
    fired = batch.fired if isinstance(batch.fired, dict) else {}
    shown = []
    for name in CALLBACKS:
        if not class_names.get(name):
            continue
        if name in fired:
            state = "fired"
        else:
            state = "not_due" if batch.finished_at is not None else "waiting"
        job_id = fired.get(name)
        shown.append(CallbackView(name, class_names[name], state, job_id if isinstance(job_id, int) else None))
    return shown


def stored_class_names(batch):
    """{callback name: class name} from the callbacks ``batch`` has loaded whole."""
    return {name: value.get("class_name") for name, value in batch.callbacks().items() if isinstance(value, dict)}


def progress_bar(batch, label):
    """The batch's progress: a ``progressbar`` that says how many members have ended."""
    percent = batch.progress_percentage
    text = _("%(ended)s of %(total)s ended (%(completed)s completed, %(failed)s failed)") % {
        "ended": batch.completed_jobs + batch.failed_jobs,
        "total": batch.total_jobs,
        "completed": batch.completed_jobs,
        "failed": batch.failed_jobs,
    }
    # The <div> is the bar for assistive technology; the <progress> inside only draws it, with
    # no inline style for a width (which a strict Content-Security-Policy would block).
    return format_html(
        '<div class="quebec-batch-progress" role="progressbar" aria-label="{}" aria-valuemin="0" '
        'aria-valuemax="100" aria-valuenow="{}" aria-valuetext="{}">'
        '<progress max="100" value="{}" aria-hidden="true"></progress> <span>{}%</span></div>',
        label,
        percent,
        text,
        percent,
        percent,
    )


def describe(batch):
    """What the batch's page shows and refreshes live: status, progress bar, counts, callbacks."""
    return {
        "batch": batch,
        "batch_status_label": STATUS_LABELS.get(batch.status, batch.status),
        "batch_progress": progress_bar(batch, _("Progress of batch #%(id)s") % {"id": batch.pk}),
        "batch_callbacks": callbacks(batch, stored_class_names(batch)),
    }


def members_url(batch_id):
    """The jobs list filtered to the members of batch ``batch_id``, on the database in use."""
    return databases.link(django_reverse("admin:quebec_job_changelist", query={"batch": batch_id}))


@dataclasses.dataclass
class JobBatchView:
    """What a job's page says of the batch it is a member, or a callback, of."""

    batch_id: int
    batch: Batch | None  # None once the batch was cleared
    is_callback: bool
    callback: str | None  # for a callback job: which callback it is, when its batch says

    @property
    def status_label(self):
        return STATUS_LABELS.get(self.batch.status, self.batch.status) if self.batch else None

    @property
    def url(self):
        return databases.reverse("admin:quebec_batch_change", args=[self.batch_id])


def of_job(job):
    """The batch ``job`` is a member or a callback of (one query), or None."""
    batch_id = batch_of(job)
    if not isinstance(batch_id, int) or isinstance(batch_id, bool):  # a row written by hand
        return None
    batch = Batch.objects.defer("metadata", *CALLBACKS).filter(pk=batch_id).first()
    callback = None
    if job.batch_id is None:
        fired = batch.fired if batch is not None and isinstance(batch.fired, dict) else {}
        names = [name for name, job_id in fired.items() if job_id == job.pk and name in CALLBACK_LABELS]
        callback = CALLBACK_LABELS[names[0]] if names else None
    return JobBatchView(batch_id, batch, is_callback=job.batch_id is None, callback=callback)
