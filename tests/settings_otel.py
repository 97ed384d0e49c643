"""tests.settings, with OpenTelemetry set up as a project would: spans of this process are
written, one JSON object a line, to the file QUEBEC_TEST_SPANS names (tests/test_tracing.py)."""

import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from tests.settings import *  # noqa: F403

_spans = open(os.environ["QUEBEC_TEST_SPANS"], "a", buffering=1)  # noqa: SIM115 (open while the process lives)
_provider = TracerProvider()
_provider.add_span_processor(
    SimpleSpanProcessor(ConsoleSpanExporter(out=_spans, formatter=lambda span: span.to_json(indent=None) + "\n"))
)
trace.set_tracer_provider(_provider)
