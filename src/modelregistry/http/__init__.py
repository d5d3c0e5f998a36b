"""The HTTP edge: one ASGI app (Starlette) served by uvicorn in the gRPC server's event loop,
on MODELREG_HTTP_LISTEN. Like the servicers, handlers parse and convert, then call the
service-layer use cases with a CallContext; nothing here opens a transaction or writes SQL.
`http/` never imports `api/` (nor grpc or the generated v1 modules).

    app.py        create_app(services, settings): /healthz, /readyz, then each surface under
                  its prefix; edge_app(services, settings, routes) for tests
    serving.py    start_http(app, settings) -> HttpServer (url, stop(grace_s))
    edge.py       outermost middleware: X-Request-Id, one log line and metrics per request
    errors.py     HttpError, ErrorRenderer, ErrorEdge; domain error -> HTTP status
    auth.py       authenticate(request) -> CallContext (Bearer, or Basic with the token as
                  password); context_for(request, access) for callers resolved otherwise
    context.py    request_id_of(request), services_of(request), settings_of(request)
    streaming.py  stream_artifact / ranged_response: bytes from the store with Range support
    probes.py     /healthz, /readyz

How a surface mounts (ui/ at "/", mlflow/ at /api/2.0/mlflow and /api/2.0/mlflow-artifacts,
oci/ at /v2): its package defines

    def routes(services: Services) -> list[BaseRoute]      # paths relative to the prefix
    def render_error(request: Request, error: HttpError) -> Response

(mlflow/ also `artifact_routes`). create_app mounts the routes under the prefix behind an
ErrorEdge that calls render_error for anything a handler raises before its response starts:
a RegistryError becomes its status (errors.status_of) with its reason and message, a routing
HTTPException (404, 405) its status, anything else 500 with the request id only (the stack
goes to the log). Handlers raise domain errors; they do not catch them to build responses.

A handler gets the caller with `ctx = await authenticate(request)` (raises Unauthenticated,
rendered as the surface's 401) and the use cases from the `services` it was built with, or
`services_of(request)`. The UI is mounted last and owns every path the others leave.
"""
