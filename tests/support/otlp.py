"""An OTLP/HTTP trace receiver on loopback: decodes what the roles export (protobuf) and
keeps each span's service, trace id, span id, parent and name."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from acceptd.cli.embedded import free_port


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str


class OtlpReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.spans: list[ExportedSpan] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _traces(self, request: web.Request) -> web.Response:
        export = trace_service_pb2.ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "?",
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        ExportedSpan(
                            service,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            span.name,
                        )
                    )
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    def in_trace(self, trace_id: str) -> list[ExportedSpan]:
        return [span for span in self.spans if span.trace_id == trace_id]

    async def up(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
