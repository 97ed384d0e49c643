from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from demo.jobs import EmailJob, ReportJob
from demo.models import Report


def index(request):
    reports = Report.objects.order_by("-pk")[:10]
    lines = [f"<li>{report.title}: {report.rows} rows</li>" for report in reports]
    return HttpResponse(
        "<h1>Quebec demo</h1><p><a href='/admin/quebec/'>Dashboard</a></p>"
        f"<form method='post' action='/enqueue/'><button>Enqueue a report</button></form><ul>{''.join(lines)}</ul>"
    )


@require_POST
def enqueue(request):
    # The job commits with the view's data, or not at all.
    with transaction.atomic():
        ReportJob.perform_later("Report requested from the web", rows=42)
        EmailJob.perform_later("ops@example.com", "A report was requested")
    return redirect("index")
