"""Public endpoints, for load balancers and monitoring: ``path("quebec/", include("quebec.dashboard.urls"))``."""

from django.urls import path

from quebec.dashboard import databases, metrics, views

app_name = "quebec"
urlpatterns = [
    path("health/", databases.routed(views.health), name="health"),
    path("metrics/", databases.routed(metrics.metrics), name="metrics"),
]
