# Rollups per minute, queue and job class (quebec.models.stats).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("quebec", "0005_continuations"),
    ]

    operations = [
        migrations.CreateModel(
            name="JobStat",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("minute", models.DateTimeField(verbose_name="minute")),
                ("queue_name", models.CharField(max_length=255, verbose_name="queue name")),
                ("class_name", models.CharField(max_length=255, verbose_name="class name")),
                ("finished", models.BigIntegerField(default=0)),
                ("failed", models.BigIntegerField(default=0)),
                ("retried", models.BigIntegerField(default=0)),
                ("discarded", models.BigIntegerField(default=0)),
                ("run_count", models.BigIntegerField(default=0)),
                ("run_sum", models.FloatField(default=0.0)),
                ("run_b00", models.BigIntegerField(default=0)),
                ("run_b01", models.BigIntegerField(default=0)),
                ("run_b02", models.BigIntegerField(default=0)),
                ("run_b03", models.BigIntegerField(default=0)),
                ("run_b04", models.BigIntegerField(default=0)),
                ("run_b05", models.BigIntegerField(default=0)),
                ("run_b06", models.BigIntegerField(default=0)),
                ("run_b07", models.BigIntegerField(default=0)),
                ("run_b08", models.BigIntegerField(default=0)),
                ("run_b09", models.BigIntegerField(default=0)),
                ("run_b10", models.BigIntegerField(default=0)),
                ("run_b11", models.BigIntegerField(default=0)),
                ("run_b12", models.BigIntegerField(default=0)),
                ("run_b13", models.BigIntegerField(default=0)),
                ("run_b14", models.BigIntegerField(default=0)),
                ("run_b15", models.BigIntegerField(default=0)),
                ("run_b16", models.BigIntegerField(default=0)),
                ("run_b17", models.BigIntegerField(default=0)),
                ("run_b18", models.BigIntegerField(default=0)),
                ("run_b19", models.BigIntegerField(default=0)),
                ("run_b20", models.BigIntegerField(default=0)),
                ("wait_count", models.BigIntegerField(default=0)),
                ("wait_sum", models.FloatField(default=0.0)),
                ("wait_b00", models.BigIntegerField(default=0)),
                ("wait_b01", models.BigIntegerField(default=0)),
                ("wait_b02", models.BigIntegerField(default=0)),
                ("wait_b03", models.BigIntegerField(default=0)),
                ("wait_b04", models.BigIntegerField(default=0)),
                ("wait_b05", models.BigIntegerField(default=0)),
                ("wait_b06", models.BigIntegerField(default=0)),
                ("wait_b07", models.BigIntegerField(default=0)),
                ("wait_b08", models.BigIntegerField(default=0)),
                ("wait_b09", models.BigIntegerField(default=0)),
                ("wait_b10", models.BigIntegerField(default=0)),
                ("wait_b11", models.BigIntegerField(default=0)),
                ("wait_b12", models.BigIntegerField(default=0)),
                ("wait_b13", models.BigIntegerField(default=0)),
                ("wait_b14", models.BigIntegerField(default=0)),
                ("wait_b15", models.BigIntegerField(default=0)),
                ("wait_b16", models.BigIntegerField(default=0)),
                ("wait_b17", models.BigIntegerField(default=0)),
                ("wait_b18", models.BigIntegerField(default=0)),
                ("wait_b19", models.BigIntegerField(default=0)),
                ("wait_b20", models.BigIntegerField(default=0)),
            ],
            options={
                "verbose_name": "job statistics",
                "verbose_name_plural": "job statistics",
                "db_table": "quebec_job_stats",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("minute", "queue_name", "class_name"), name="quebec_job_stats_group"
                    )
                ],
            },
        ),
    ]
