"""The base of Quebec's admin pages: read-only, with the dashboard's tabs and live rows."""

import hashlib

from django.contrib import admin
from django.http import HttpResponseBadRequest, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from quebec.dashboard import databases, lists, times, views


class QuebecModelAdmin(admin.ModelAdmin):
    """Read-only lists in Quebec's look, with capped counts and the Quebec tabs."""

    change_list_template = "quebec/change_list.html"
    paginator = lists.CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would COUNT every filter choice
    list_per_page = 50
    tab = None
    list_title = None
    live_rows = True  # the list's rows refresh in place (see rows_view)
    # Under the list: "count" picks the plural, "shown" is the count as shown ("10,000+").
    count_text = ngettext_lazy("%(shown)s row", "%(shown)s rows", "count")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_model_perms(self, request):
        # The admin index and side bar list Quebec as one entry, the dashboard (quebec.dashboard.entry).
        return dict.fromkeys(("add", "change", "delete", "view"), False)

    def has_act_permission(self, request):
        """Actions (retry, pause, run now...) need the model's change permission."""
        return request.user.has_perm(f"quebec.change_{self.opts.model_name}")

    def get_changelist(self, request, **kwargs):
        return lists.CappedChangeList

    def get_tab(self, request):
        return self.tab

    def get_list_title(self, request):
        return self.list_title

    @property
    def rows_url_name(self):
        return f"{self.opts.app_label}_{self.opts.model_name}_rows"

    @property
    def urls(self):
        # Every page and action of the list, the subclasses' own included, on the chosen database.
        patterns = self.get_urls()
        for pattern in patterns:
            pattern.callback = databases.routed(pattern.callback)
        return patterns

    def get_urls(self):
        if not self.live_rows:
            return super().get_urls()
        return [path("rows/", self.admin_site.admin_view(self.rows_view), name=self.rows_url_name), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        context = {**views.page_context(request, self.get_tab(request)), **(extra_context or {})}
        if self.get_list_title(request):
            context.setdefault("title", self.get_list_title(request))
        return self._changelist(request, context)

    @method_decorator(never_cache)
    @method_decorator(require_safe)
    def rows_view(self, request):
        """The list's rows, actions bar and page links for the same filters, search and page, as
        JSON with a digest: the refresh script swaps them in when the digest changes."""
        response = self._changelist(request, {})
        rows = getattr(response, "context_data", {}).get("quebec_rows")
        if rows is None:  # the admin redirects filters it cannot apply
            return HttpResponseBadRequest(str(_("These filters do not apply to this list.")))
        return JsonResponse({"html": rows, "digest": response.context_data["quebec_rows_digest"]})

    def get_preserved_filters(self, request):
        # Rows rendered for the refresh link to job pages with the page's filters, as the page does.
        match = request.resolver_match
        if match and match.url_name == self.rows_url_name:
            return request.GET.urlencode()
        return super().get_preserved_filters(request)

    def _changelist(self, request, context):
        response = super().changelist_view(request, context)
        data = getattr(response, "context_data", None) or {}
        cl = data.get("cl")
        if cl is None:  # a redirect or a confirmation page
            return response
        if getattr(cl, "capped", False):
            data["selection_note_all"] = _("All %(total)s selected") % {"total": cl.result_count_display}
        if self.live_rows:
            rows = render_to_string("quebec/includes/change_list_rows.html", data, request)
            data["quebec_rows"] = rows
            data["quebec_rows_digest"] = hashlib.sha256(times.steady(rows).encode()).hexdigest()[:20]
            query = request.GET.urlencode()
            url = reverse(f"admin:{self.rows_url_name}")
            data["quebec_rows_url"] = f"{url}?{query}" if query else url
        return response
