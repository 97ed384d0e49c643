"""The dashboard's entry in the admin index: no table, only a name for the admin to list.

The admin index lists an app's models; Quebec's nine tables are its internals, and the index
should show one entry, "Dashboard", that leads to the dashboard (``quebec.dashboard.entry``).
A proxy of ``Job`` has no table of its own and, with no default permissions, adds none.
"""

from django.utils.translation import gettext_lazy as _

from quebec.models.jobs import Job


class Dashboard(Job):
    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = _("dashboard")
        verbose_name_plural = _("dashboard")
