"""Quebec as one entry of the admin index: "Dashboard", leading to the overview.

The admin lists, under each app, every model whose admin grants some permission
(``get_model_perms``). Every Quebec page is a ``QuebecModelAdmin``, which grants none there (its
pages keep their own permissions), so whatever number of them there is, the index and the side
bar list only this one, shown to anyone who may see some Quebec page. Its link goes to the
overview, which is the Quebec app index.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path, reverse

from quebec import models
from quebec.dashboard import databases


@admin.register(models.Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_model_perms(self, request):
        return {"add": False, "change": False, "delete": False, "view": self.has_view_permission(request)}

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.overview), name=name)]

    def overview(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        url = reverse("admin:app_list", kwargs={"app_label": self.opts.app_label})
        return redirect(databases.link(url, databases.selected(request)))
