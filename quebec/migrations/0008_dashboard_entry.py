# The dashboard's entry in the admin index (quebec.models.dashboard): a proxy, with no table
# and no permissions.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("quebec", "0007_job_stats"),
    ]

    operations = [
        migrations.CreateModel(
            name="Dashboard",
            fields=[],
            options={
                "verbose_name": "dashboard",
                "verbose_name_plural": "dashboard",
                "proxy": True,
                "default_permissions": (),
                "indexes": [],
                "constraints": [],
            },
            bases=("quebec.job",),
        ),
    ]
