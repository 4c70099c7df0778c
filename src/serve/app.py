"""The HTTP API and web page over a ServedModel (FastAPI), and the uvicorn server that runs it.

Every bad request is answered 4xx with one JSON line {"detail": "..."} naming the problem; the
server stays up. Translations run in worker threads (never on the event loop), at most
`PARALLEL_JOBS` at once so that /health and the page stay responsive under load; the model's
graph calls inside them run one at a time (src/serve/model.py). Admission, time budgets, the
API key and metrics: src/serve/guard.py.
"""
import enum
import json
import os
import signal
import socket
import sys
from typing import Optional

import anyio
from fastapi import Depends, FastAPI, File, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers

from src.config import API_KEY_VARIABLE
from src.dataset.normalize import describe_scaling, side_scaling
from src.serve.guard import (Admission, AdmissionMiddleware, ApiKeyMiddleware, Metrics, MetricsMiddleware,
                             set_reason)
from src.serve.model import OUTPUT_FORMATS, MEDIA_TYPES, UploadError, load_served_model, safe_name
from src.utils.errors import UserError

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.html")
# Room for the multipart envelope (boundaries, part headers) around the file in a request body.
MULTIPART_ALLOWANCE = 64 * 1024
# Uploads decoded, translated and encoded at once (the graph calls inside still queue).
PARALLEL_JOBS = max(2, os.cpu_count() or 1)
# The environment variable that hands the resolved flags to --workers > 1 processes.
CONFIG_VARIABLE = "P2P_SERVE_CONFIG"
# How long a --workers process may take to start answering its supervisor.
WORKER_START_S = 300
# After --shutdown_timeout, the time a tile in progress and the 503 answers may take before
# uvicorn cancels what is left.
TILE_GRACE_S = 30
# Swagger UI's files, from the swagger-ui-bundle package: /docs works offline.
SWAGGER_ROUTE = "/static/swagger"
SWAGGER_OPENAPI_VERSION = "3.0.3"

OutputFormat = enum.Enum("OutputFormat", {name: name for name in OUTPUT_FORMATS}, type=str)
Side = enum.Enum("Side", {"input": "input", "target": "target"}, type=str)


def error(status, message, headers=None):
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is answered 413 with `message`, before
    any of it is read when Content-Length says so, else as soon as the count passes the limit."""

    def __init__(self, app, limit, message):
        self.app, self.limit, self.message = app, limit, message

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            set_reason(scope, "too_large")
            await error(413, self.message)(scope, receive, send)
            return
        received, over = 0, False

        async def counted_receive():
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                over = True
                return {"type": "http.disconnect"}
            return message

        async def send_unless_over(message):
            if not over:  # the app's answer to a body cut short is replaced by the 413 below
                await send(message)

        try:
            await self.app(scope, counted_receive, send_unless_over)
        except Exception:
            if not over:
                raise
        if over:
            set_reason(scope, "too_large")
            await error(413, self.message)(scope, receive, send)


def validation_message(exc):
    """One line for FastAPI's validation errors: a missing upload or a bad query value."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query"))
    if first.get("type") == "missing" and where == "file":
        return "missing form field 'file': POST the file as multipart/form-data in a field named 'file'"
    if where == "file":
        return "form field 'file' is not a file upload: send it as multipart/form-data with a file name"
    return f"{where or 'request'}: {first.get('msg', 'invalid')}"


def api_key(cfg):
    """--api_key, else the PIX2PIX_API_KEY environment variable; None: no key asked."""
    return cfg.api_key or os.environ.get(API_KEY_VARIABLE) or None


def public_card(model, show_paths):
    """The model card as every client sees it: file names only, unless the operator asked for
    the server's paths (--show_paths)."""
    shown = (lambda path: path) if show_paths else (lambda path: path and os.path.basename(path))
    return {**model.card, "checkpoint": shown(model.card.get("checkpoint"))}, shown(model.source)


def create_app(model, cfg):
    """The FastAPI app serving `model` (a ServedModel) within serve.py's limits in `cfg`
    (--max_upload_mb, --max_pixels, --request_timeout, --max_queue, --api_key, --show_paths)."""
    limit_bytes = int(cfg.max_upload_mb * 1e6)
    metrics = Metrics()
    admission = Admission(PARALLEL_JOBS, cfg.max_queue, cfg.request_timeout, metrics)
    key = api_key(cfg)
    # The key is checked by ApiKeyMiddleware; declared here so that /docs offers "Authorize".
    keyed = [Depends(APIKeyHeader(name="X-API-Key", auto_error=False))] if key else []
    app = FastAPI(title="Pix2Pix (MindSpore)", version="1", docs_url=None, redoc_url=None,
                  description="Translates images with the model that GET /model describes. The web page is at /.")
    app.openapi_version = SWAGGER_OPENAPI_VERSION  # Swagger UI 4 (swagger-ui-bundle) reads 3.0, not 3.1
    app.state.admission = admission
    app.add_middleware(AdmissionMiddleware, admission=admission)
    app.add_middleware(BodyLimit, limit=limit_bytes + MULTIPART_ALLOWANCE,
                       message=f"upload over this server's limit of {cfg.max_upload_mb:g} MB (--max_upload_mb)")
    if key:
        app.add_middleware(ApiKeyMiddleware, key=key)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    import swagger_ui_bundle
    app.mount(SWAGGER_ROUTE, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")
    with open(PAGE, encoding="utf-8") as handle:
        page = handle.read()
    card, served_file = public_card(model, cfg.show_paths)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, exc):
        request.state.reject_reason = "bad_request"
        return error(422, validation_message(exc))

    @app.exception_handler(UserError)
    async def unusable_upload(request, exc):
        request.state.reject_reason = getattr(exc, "reason", "unreadable")
        retry = getattr(exc, "retry_after", None)
        return error(getattr(exc, "status", 422), str(exc).splitlines()[0],
                     {"Retry-After": str(retry)} if retry else None)

    @app.exception_handler(Exception)
    async def bug(request, exc):  # the traceback still goes to the server's log
        return error(500, f"internal error ({type(exc).__name__}); the server's log has the details")

    async def upload(file, side="input", side_format=None):
        name = safe_name(file.filename)
        content = await file.read(limit_bytes + 1)
        model.check_upload(name, content, limit_bytes, side, side_format)
        model.check_pixels(name, content, cfg.max_pixels, side, side_format)
        return name, content

    @app.post("/translate", response_class=Response, dependencies=keyed,
              responses={200: {"content": {media: {} for media in sorted(set(MEDIA_TYPES.values()))},
                               "description": "the translation, named like the upload"},
                         400: {"description": "empty upload"}, 401: {"description": "no or a wrong --api_key"},
                         413: {"description": "over --max_upload_mb or --max_pixels"},
                         415: {"description": "a file type this model does not read"},
                         422: {"description": "unreadable file, or one that does not fit the model"},
                         503: {"description": "busy (over --max_queue), over --request_timeout, or shutting "
                                              "down; Retry-After says when to come back"}})
    async def translate(file: UploadFile = File(..., description="the image (or FITS/npy/TIFF array) to translate"),
                        output_format: Optional[OutputFormat] = Query(
                            None, alias="format", description="output format; default: the model card's "
                            "(PNG for 8-bit images, FITS in physical units with its header for FITS)")):
        """Translate one uploaded file at its own size, exactly as predict.py does."""
        name, content = await upload(file)
        chosen = output_format.value if output_format else model.default_format
        if chosen not in model.output_formats:
            raise UploadError(f"format {chosen}: this model's output ({model.card['output_nc']} channels) is "
                              f"written as {', '.join(model.output_formats)}", 422, "bad_request")
        data, filename, (width, height) = await admission.admit(
            lambda before_batch: model.translate(name, content, chosen, before_batch))
        return Response(data, media_type=MEDIA_TYPES[chosen],
                        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                 "X-Image-Size": f"{width}x{height}"})

    @app.post("/preview", response_class=Response, dependencies=keyed,
              responses={200: {"content": {"image/png": {}}, "description": "a PNG to look at"}})
    async def preview(file: UploadFile = File(..., description="an input, or a translation this server returned"),
                      side: Side = Query(Side.input, description="input: read as the model's input; "
                                         "target: as its output"),
                      side_format: Optional[OutputFormat] = Query(
                          None, alias="format", description="the file's format; default: the model card's for that side")):
        """A PNG of a file as the network sees it (normalised as the card says, [-1, 1] as 0..255):
        what the web page shows for FITS, npy and TIFF data."""
        name, content = await upload(file, side.value, side_format and side_format.value)
        data = await admission.admit(lambda _: model.preview(name, content, side.value,
                                                           side_format and side_format.value))
        return Response(data, media_type="image/png")

    @app.get("/model", dependencies=keyed)
    async def model_card():
        """The model card export.py wrote, and how this server serves the model (file names only
        unless the server runs with --show_paths)."""
        return {**card, "serving": {
            "file": served_file, "kind": model.kind, "runtime": model.runtime, "default_format": model.default_format,
            "output_formats": list(model.output_formats), "input_format": model.side_format("input"),
            "target_format": model.side_format("target"), "input_extensions": list(model.input_extensions()),
            **{f"{side}_scaling": describe_scaling(side_scaling(model.data_cfg, side)) for side in ("input", "target")},
            "max_upload_mb": cfg.max_upload_mb, "max_pixels": cfg.max_pixels, "request_timeout_s": cfg.request_timeout,
            "parallel_translations": PARALLEL_JOBS, "max_queue": cfg.max_queue, "api_key": bool(key),
            "tiling": model.tiling.to_dict(), "examples": list(model.examples)}}

    @app.get("/examples/{name}", dependencies=keyed, response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "the example as the model reads it"},
                        404: {"description": "not one of the examples GET /model lists"}})
    async def example(name: str):
        """One of the server's example inputs (--examples; GET /model lists them) as a PNG with the
        model's input channels: a start for the page's drawing canvas."""
        data = await anyio.to_thread.run_sync(model.example_png, name)  # a file read, not a translation
        if data is None:
            return error(404, f"{name}: not one of this server's examples ({', '.join(model.examples) or 'none'})")
        return Response(data, media_type="image/png")

    @app.get("/metrics", dependencies=keyed, response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def prometheus_metrics():
        """Requests by endpoint and status, their latency, the translations waiting and running,
        and refused uploads by reason, in the Prometheus text format (this process's)."""
        body, media_type = metrics.exposition()
        return Response(body, media_type=media_type)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": os.path.basename(model.source)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return page

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API",
                                   swagger_js_url=f"{SWAGGER_ROUTE}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_ROUTE}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER_ROUTE}/favicon-32x32.png")

    return app

def check_port_free(host, port):
    """A port another process listens on is a one-line UserError (before the model loads)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise UserError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None


def app_from_environment():
    """The app of one --workers process (uvicorn imports it by name): the flags serve() resolved."""
    import types
    from src.utils.device import set_context
    cfg = types.SimpleNamespace(**json.loads(os.environ[CONFIG_VARIABLE]))
    set_context(cfg)
    return create_app(load_served_model(cfg), cfg)


def bounded_shutdown_server(app, cfg):
    """A uvicorn server of `app` whose shutdown (SIGTERM, Ctrl-C) stops accepting, gives in-flight
    translations --shutdown_timeout seconds, then stops them at their next tile (answered 503);
    after SIGTERM the process exits 0."""
    import uvicorn

    class BoundedShutdownServer(uvicorn.Server):
        def handle_exit(self, sig, frame):
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM:  # a stop asked for: uvicorn would re-raise it on the way out
                self._captured_signals.remove(sig)

        async def shutdown(self, sockets=None):
            app.state.admission.begin_shutdown(cfg.shutdown_timeout)
            await super().shutdown(sockets)

    return BoundedShutdownServer(uvicorn.Config(app, host=cfg.host, port=cfg.port,
                                                timeout_graceful_shutdown=cfg.shutdown_timeout + TILE_GRACE_S))


def serve(cfg):
    """Load the model (problems stop here, as UserError), then serve it until interrupted."""
    import uvicorn
    from src.utils.device import set_context
    check_port_free(cfg.host, cfg.port)
    set_context(cfg)
    model = load_served_model(cfg)
    url = f"http://{cfg.host}:{cfg.port}"
    print(f"serving {model.source} at {url}/ (page), {url}/docs (API); Ctrl-C stops", file=sys.stderr, flush=True)
    if cfg.workers == 1:
        server = bounded_shutdown_server(create_app(model, cfg), cfg)
        server.run()
        if not server.started:
            raise UserError(f"--host {cfg.host} --port {cfg.port}: the server did not start (its log above says why)")
        return
    del model  # each worker process loads its own
    os.environ[CONFIG_VARIABLE] = json.dumps({k: v for k, v in vars(cfg).items() if k != "given_flags"})
    # A worker answers the supervisor's health pings only once MindSpore has loaded and the model
    # compiled, which takes more than uvicorn's default 5 s on a busy CPU. Worker processes are
    # uvicorn's own: after --shutdown_timeout their unfinished requests are cancelled, unanswered.
    uvicorn.run("src.serve.app:app_from_environment", factory=True, host=cfg.host, port=cfg.port,
                workers=cfg.workers, timeout_worker_healthcheck=WORKER_START_S,
                timeout_graceful_shutdown=cfg.shutdown_timeout)
