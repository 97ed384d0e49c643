# Two of the job table's indexes become partial where the database has partial indexes
# (PostgreSQL, SQLite): finished jobs only, and batch members only. An enqueue then writes two
# index entries fewer per job, and a job's finish one fewer. Only the database changes: the
# model keeps them whole, which is what MySQL and MariaDB (no partial indexes) keep. (A later
# migration that makes SQLite rebuild the table would rebuild them whole: slower, not wrong.)

from django.db import migrations, models

WHOLE = [
    models.Index(fields=["finished_at"], name="quebec_jobs_finished_at"),
    models.Index(fields=["batch", "finished_at"], name="quebec_jobs_batch"),
]
PARTIAL = [
    models.Index(fields=["finished_at"], name="quebec_jobs_finished_at", condition=models.Q(finished_at__isnull=False)),
    models.Index(fields=["batch", "finished_at"], name="quebec_jobs_batch", condition=models.Q(batch__isnull=False)),
]


def _swap(apps, schema_editor, old, new):
    if not schema_editor.connection.features.supports_partial_indexes:
        return
    job = apps.get_model("quebec", "Job")
    for before, after in zip(old, new, strict=True):
        schema_editor.remove_index(job, before)
        schema_editor.add_index(job, after)


def make_partial(apps, schema_editor):
    _swap(apps, schema_editor, WHOLE, PARTIAL)


def make_whole(apps, schema_editor):
    _swap(apps, schema_editor, PARTIAL, WHOLE)


class Migration(migrations.Migration):
    dependencies = [
        ("quebec", "0008_dashboard_entry"),
    ]

    operations = [
        migrations.RunPython(make_partial, make_whole, elidable=False),
    ]
