"""URLs of the minimal Django that standalone mode configures: the admin, Quebec's health
endpoint, and the root sending visitors to the dashboard."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("quebec/", include("quebec.dashboard.urls")),
    path("", RedirectView.as_view(url="/admin/quebec/", permanent=False)),
]
