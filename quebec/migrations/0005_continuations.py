# Progress, steps and cancellation requests of a job (quebec.lifecycle.progress).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("quebec", "0004_unique_keys"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="job",
            options={
                "permissions": [("cancel_job", "Can cancel jobs")],
                "verbose_name": "job",
                "verbose_name_plural": "jobs",
            },
        ),
        migrations.AddField(
            model_name="job",
            name="cancel_requested_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="cancel requested at"),
        ),
        migrations.AddField(
            model_name="job",
            name="cancel_requested_by",
            field=models.CharField(blank=True, default="", max_length=255, verbose_name="cancel requested by"),
        ),
        migrations.AddField(
            model_name="job",
            name="continuation",
            field=models.JSONField(blank=True, null=True, verbose_name="continuation"),
        ),
        migrations.AddField(
            model_name="job",
            name="progress",
            field=models.JSONField(blank=True, null=True, verbose_name="progress"),
        ),
    ]
