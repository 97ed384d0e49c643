# Batches: a group of jobs with callbacks (quebec.models.batches), and each job's batch.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("quebec", "0005_continuations"),
    ]

    operations = [
        migrations.CreateModel(
            name="Batch",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("description", models.CharField(blank=True, default="", max_length=255, verbose_name="description")),
                ("metadata", models.JSONField(blank=True, default=dict, verbose_name="metadata")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "pending"),
                            ("running", "running"),
                            ("succeeded", "succeeded"),
                            ("failed", "failed"),
                        ],
                        default="pending",
                        max_length=16,
                        verbose_name="status",
                    ),
                ),
                ("total_jobs", models.IntegerField(default=0, verbose_name="total jobs")),
                ("pending_jobs", models.IntegerField(default=0, verbose_name="pending jobs")),
                ("completed_jobs", models.IntegerField(default=0, verbose_name="completed jobs")),
                ("failed_jobs", models.IntegerField(default=0, verbose_name="failed jobs")),
                ("on_finish", models.JSONField(blank=True, null=True, verbose_name="on finish")),
                ("on_success", models.JSONField(blank=True, null=True, verbose_name="on success")),
                ("on_failure", models.JSONField(blank=True, null=True, verbose_name="on failure")),
                ("fired", models.JSONField(blank=True, default=dict, verbose_name="callbacks fired")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="created at")),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="updated at")),
                ("finished_at", models.DateTimeField(blank=True, null=True, verbose_name="finished at")),
            ],
            options={
                "verbose_name": "batch",
                "verbose_name_plural": "batches",
                "db_table": "quebec_batches",
                "indexes": [
                    models.Index(fields=["status", "created_at"], name="quebec_batches_by_status"),
                    models.Index(fields=["finished_at"], name="quebec_batches_finished_at"),
                ],
            },
        ),
        migrations.AddField(
            model_name="job",
            name="batch",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="jobs",
                to="quebec.batch",
                verbose_name="batch",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["batch", "finished_at"], name="quebec_jobs_batch"),
        ),
    ]
