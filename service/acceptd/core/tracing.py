"""W3C Trace Context across the three processes, with OpenTelemetry when it is installed.

A `traceparent` sent with a submit is kept with the job; the worker's run and every webhook
attempt continue that trace, and each webhook request carries a `traceparent` of the same
trace id with the attempt's own span id, so the receiver's trace joins.

Without the `otel` extra (or with no OTLP endpoint configured) nothing is exported, but the
ids still flow: each hop makes a child span id itself. With `pip install 'acceptd[otel]'`
and the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) set, each role
exports real spans over OTLP/HTTP as service `acceptd-<role>` (`OTEL_SERVICE_NAME` wins).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
SpanKind = Literal["server", "client", "internal", "consumer", "producer"]


@dataclass(frozen=True)
class TraceParent:
    trace_id: str
    span_id: str
    flags: str = "01"

    @classmethod
    def parse(cls, header: str | None) -> TraceParent | None:
        """The header's ids, or None for anything the spec says to ignore (version 00 only,
        lower-case hex, no all-zero id)."""
        if not header:
            return None
        match = _TRACEPARENT.fullmatch(header.strip())
        if match is None:
            return None
        trace_id, span_id, flags = match.groups()
        if trace_id == "0" * 32 or span_id == "0" * 16:
            return None
        return cls(trace_id, span_id, flags)

    def child(self) -> TraceParent:
        return TraceParent(self.trace_id, secrets.token_hex(8), self.flags)

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


class _Exporting:
    """The OpenTelemetry side, built only when the SDK is installed and an endpoint is set."""

    def __init__(self, role: str) -> None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        name = os.environ.get("OTEL_SERVICE_NAME") or f"acceptd-{role}"
        self.provider = TracerProvider(resource=Resource.create({"service.name": name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("acceptd")
        self.trace = trace
        self.propagator = TraceContextTextMapPropagator()
        self.kinds = {
            "server": trace.SpanKind.SERVER,
            "client": trace.SpanKind.CLIENT,
            "internal": trace.SpanKind.INTERNAL,
            "consumer": trace.SpanKind.CONSUMER,
            "producer": trace.SpanKind.PRODUCER,
        }
        atexit.register(self.provider.shutdown)  # flush what is batched when the role stops

    @contextlib.contextmanager
    def span(
        self, name: str, parent: str | None, kind: SpanKind, attributes: dict[str, Any]
    ) -> Iterator[str | None]:
        context = self.propagator.extract({"traceparent": parent}) if parent else None
        with self.tracer.start_as_current_span(
            name, context=context, kind=self.kinds[kind], attributes=attributes
        ):
            carrier: dict[str, str] = {}
            self.propagator.inject(carrier)
            yield carrier.get("traceparent")

    @contextlib.contextmanager
    def nested(self, name: str, attributes: dict[str, Any]) -> Iterator[None]:
        """A span under whatever span is current (a Lua script inside a submit, say)."""
        if not self.trace.get_current_span().get_span_context().is_valid:
            yield
            return
        with self.tracer.start_as_current_span(
            name, kind=self.kinds["client"], attributes=attributes
        ):
            yield


_exporting: _Exporting | None = None


def configure(role: str) -> bool:
    """Called once by each role at start; True when spans will be exported."""
    global _exporting
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    try:
        _exporting = _Exporting(role)
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed: "
            "pip install 'acceptd[otel]'"
        )
        return False
    return True


def exporting() -> bool:
    return _exporting is not None


_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


def span(
    name: str,
    parent: str | None,
    *,
    kind: SpanKind = "internal",
    attributes: dict[str, Any] | None = None,
) -> AbstractContextManager[str | None]:
    """A span continuing `parent` (a traceparent header, or None). Gives this span's own
    traceparent to pass on, or None when there is no trace to continue and none exported.
    Not exporting (most deployments), no generator is made: every submit opens one."""
    if _exporting is not None:
        return _exporting.span(name, parent, kind, attributes or {})
    if parent is None:
        return _NO_SPAN
    found = TraceParent.parse(parent)
    return contextlib.nullcontext(found.child().header() if found else None)


def nested(name: str, **attributes: Any) -> AbstractContextManager[None]:
    if _exporting is None:
        return _NO_SPAN
    return _exporting.nested(name, attributes)
