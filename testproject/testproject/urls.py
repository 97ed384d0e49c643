from django.contrib import admin
from django.urls import include, path

from demo import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("quebec/", include("quebec.dashboard.urls")),
    path("", views.index, name="index"),
    path("enqueue/", views.enqueue, name="enqueue"),
]
