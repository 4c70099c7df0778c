"""The HTTP API and web page over a ServedModel (FastAPI), and the uvicorn server that runs it.

Every bad request is answered 4xx with one JSON line {"detail": "..."} naming the problem; the
server stays up. Translations run in worker threads (never on the event loop), at most
`PARALLEL_JOBS` at once so that /health and the page stay responsive under load; the model's
graph calls inside them run one at a time (src/serve/model.py).
"""
import enum
import json
import os
import socket
import sys
from typing import Optional

import anyio
from fastapi import FastAPI, File, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import Headers

from src.dataset.normalize import describe_scaling, side_scaling
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

OutputFormat = enum.Enum("OutputFormat", {name: name for name in OUTPUT_FORMATS}, type=str)
Side = enum.Enum("Side", {"input": "input", "target": "target"}, type=str)


def error(status, message):
    return JSONResponse({"detail": message}, status_code=status)


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


def create_app(model, max_upload_mb):
    """The FastAPI app serving `model` (a ServedModel), uploads up to `max_upload_mb` MB."""
    limit_bytes = int(max_upload_mb * 1e6)
    jobs = anyio.CapacityLimiter(PARALLEL_JOBS)
    app = FastAPI(title="Pix2Pix (MindSpore)", version="1",
                  description=f"Translates images with {os.path.basename(model.source)}. The web page is at /.")
    app.add_middleware(BodyLimit, limit=limit_bytes + MULTIPART_ALLOWANCE,
                       message=f"upload over this server's limit of {max_upload_mb:g} MB (--max_upload_mb)")
    with open(PAGE, encoding="utf-8") as handle:
        page = handle.read()

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, exc):
        return error(422, validation_message(exc))

    @app.exception_handler(UserError)
    async def unusable_upload(request, exc):
        return error(getattr(exc, "status", 422), str(exc).splitlines()[0])

    @app.exception_handler(Exception)
    async def bug(request, exc):  # the traceback still goes to the server's log
        return error(500, f"internal error ({type(exc).__name__}); the server's log has the details")

    async def upload(file, side="input", side_format=None):
        name = safe_name(file.filename)
        content = await file.read(limit_bytes + 1)
        model.check_upload(name, content, limit_bytes, side, side_format)
        return name, content

    @app.post("/translate", response_class=Response,
              responses={200: {"content": {media: {} for media in sorted(set(MEDIA_TYPES.values()))},
                               "description": "the translation, named like the upload"},
                         400: {"description": "empty upload"}, 413: {"description": "over --max_upload_mb"},
                         415: {"description": "a file type this model does not read"},
                         422: {"description": "unreadable file, or one that does not fit the model"}})
    async def translate(file: UploadFile = File(..., description="the image (or FITS/npy/TIFF array) to translate"),
                        output_format: Optional[OutputFormat] = Query(
                            None, alias="format", description="output format; default: the model card's "
                            "(PNG for 8-bit images, FITS in physical units with its header for FITS)")):
        """Translate one uploaded file at its own size, exactly as predict.py does."""
        name, content = await upload(file)
        chosen = output_format.value if output_format else model.default_format
        if chosen not in model.output_formats:
            raise UploadError(f"format {chosen}: this model's output ({model.card['output_nc']} channels) is "
                              f"written as {', '.join(model.output_formats)}", 422)
        data, filename, (width, height) = await anyio.to_thread.run_sync(
            model.translate, name, content, chosen, limiter=jobs)
        return Response(data, media_type=MEDIA_TYPES[chosen],
                        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                 "X-Image-Size": f"{width}x{height}"})

    @app.post("/preview", response_class=Response,
              responses={200: {"content": {"image/png": {}}, "description": "a PNG to look at"}})
    async def preview(file: UploadFile = File(..., description="an input, or a translation this server returned"),
                      side: Side = Query(Side.input, description="input: read as the model's input; "
                                         "target: as its output"),
                      side_format: Optional[OutputFormat] = Query(
                          None, alias="format", description="the file's format; default: the model card's for that side")):
        """A PNG of a file as the network sees it (normalised as the card says, [-1, 1] as 0..255):
        what the web page shows for FITS, npy and TIFF data."""
        name, content = await upload(file, side.value, side_format and side_format.value)
        data = await anyio.to_thread.run_sync(model.preview, name, content, side.value,
                                              side_format and side_format.value, limiter=jobs)
        return Response(data, media_type="image/png")

    @app.get("/model")
    async def model_card():
        """The model card export.py wrote, and how this server serves the model."""
        return {**model.card, "serving": {
            "file": model.source, "kind": model.kind, "runtime": model.runtime, "default_format": model.default_format,
            "output_formats": list(model.output_formats), "input_format": model.side_format("input"),
            "target_format": model.side_format("target"), "input_extensions": list(model.input_extensions()),
            **{f"{side}_scaling": describe_scaling(side_scaling(model.data_cfg, side)) for side in ("input", "target")},
            "max_upload_mb": max_upload_mb, "tiling": model.tiling.to_dict()}}

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": os.path.basename(model.source)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return page

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
    return create_app(load_served_model(cfg), cfg.max_upload_mb)


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
        uvicorn.run(create_app(model, cfg.max_upload_mb), host=cfg.host, port=cfg.port)
        return
    del model  # each worker process loads its own
    os.environ[CONFIG_VARIABLE] = json.dumps({k: v for k, v in vars(cfg).items() if k != "given_flags"})
    # A worker answers the supervisor's health pings only once MindSpore has loaded and the model
    # compiled, which takes more than uvicorn's default 5 s on a busy CPU.
    uvicorn.run("src.serve.app:app_from_environment", factory=True, host=cfg.host, port=cfg.port,
                workers=cfg.workers, timeout_worker_healthcheck=WORKER_START_S)
