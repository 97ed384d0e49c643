"""The admin index lists Quebec as one entry, the dashboard, whatever Quebec pages are registered."""

import re

import pytest
from django.contrib import admin

from quebec.dashboard.entry import DashboardAdmin
from quebec.dashboard.model_admin import QuebecModelAdmin
from tests.test_admin_fixtures import _whitenoise_without_collectstatic, staff_client  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def quebec_rows(html):
    """The links of the Quebec section of an admin app list (the index's, or the side bar's)."""
    section = html.split('class="app-quebec module', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<th scope="row" id="quebec-(\w+)">\s*<a href="([^"]*)"[^>]*>([^<]*)</a>', section)


def test_the_index_lists_quebec_as_one_entry_that_leads_to_the_dashboard(admin_client):
    quebec_admins = [model for model in admin.site._registry if model._meta.app_label == "quebec"]
    assert len(quebec_admins) >= 10  # the tables' pages are registered, yet not listed
    html = admin_client.get("/admin/").content.decode()
    assert quebec_rows(html) == [("dashboard", "/admin/quebec/dashboard/", "Dashboard")]
    assert '<a href="/admin/quebec/" class="section"' in html
    response = admin_client.get("/admin/quebec/dashboard/")
    assert response.status_code == 302 and response["Location"] == "/admin/quebec/"
    assert admin_client.get("/admin/quebec/").status_code == 200


def test_the_side_bar_lists_the_same_one_entry(admin_client):
    html = admin_client.get("/admin/quebec/failedexecution/").content.decode()
    sidebar = html.split('id="nav-sidebar"', 1)[1]
    assert quebec_rows(sidebar) == [("dashboard", "/admin/quebec/dashboard/", "Dashboard")]


def test_every_quebec_page_leaves_the_index_to_the_entry():
    """A new Quebec page (a Batches page...) is a QuebecModelAdmin, so the index never lists it."""
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label == "quebec":
            assert isinstance(model_admin, QuebecModelAdmin | DashboardAdmin), model


def test_the_entry_shows_to_whoever_may_see_a_quebec_page(client, staff_client):
    assert quebec_rows(staff_client("view_pause").get("/admin/").content.decode()) == [
        ("dashboard", "/admin/quebec/dashboard/", "Dashboard")
    ]
    assert staff_client("view_pause").get("/admin/quebec/").status_code == 200
    assert "app-quebec" not in staff_client().get("/admin/").content.decode()
    assert staff_client().get("/admin/quebec/dashboard/").status_code == 403
    assert client.get("/admin/quebec/dashboard/").status_code == 302  # to the login page


def test_the_entry_keeps_the_chosen_database(admin_client):
    response = admin_client.get("/admin/quebec/dashboard/", {"database": "second"})
    assert response["Location"] == "/admin/quebec/?database=second"
