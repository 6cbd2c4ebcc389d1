"""The review web app: a FastAPI JSON API over a :class:`~textshift.review.store.ReviewStore` and one static page.

Security, in layers:

* the server binds 127.0.0.1 unless told otherwise; on a loopback address it answers only requests whose
  ``Host`` is a loopback name (a page on another site cannot reach it through DNS rebinding);
* bound to any other address, every API call needs the random token printed with the URL;
* writes must be JSON (a cross-site form cannot send it), at most 1 MB, and a cross-origin ``Origin`` is refused;
* the page builds the DOM with ``textContent`` only and a Content-Security-Policy forbids inline scripts, so
  dataset text such as ``<script>`` is shown, never run;
* exports go to a plain file name inside the export folder (:func:`~textshift.review.export.safe_export_path`).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import re
import secrets
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from textshift.data import TextData
from textshift.errors import ConfigError, ForeignOutputError, OutputExistsError, TextshiftError
from textshift.review.store import MAX_ROW, ReviewStore, shown

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
TOKEN_HEADER = "x-textshift-token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
MIN_TOKEN_LENGTH = 16
MAX_BODY_BYTES = 1_000_000  # the page's largest request is an edit or an export name: a few hundred bytes
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token(token: str | None) -> None:
    """Raise ConfigError unless ``token`` is None (no token) or at least 16 URL-safe characters."""
    if token is None:
        return
    if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH or not re.fullmatch(r"[A-Za-z0-9._~-]+", token):
        found = f"{len(token)} characters" if isinstance(token, str) else shown(token)
        raise ConfigError(f"the token must be at least {MIN_TOKEN_LENGTH} characters among letters, digits and "
                          f"'-_.~'; got {found}. Leave it out to get a random one")


def check_port(port: int) -> None:
    """Raise ConfigError unless ``port`` is a whole number from 0 (any free port) to 65535."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be a whole number between 0 and 65535; got {shown(port)}. Pass 0 for any "
                          "free port")


def check_host(host: str) -> None:
    """Raise ConfigError unless ``host`` is a non-empty string (an address or a host name)."""
    if not isinstance(host, str) or not host.strip():
        raise ConfigError(f"host must be an address such as 127.0.0.1; got {shown(host)}")


def _host_name(header: str | None) -> str:
    if not header:
        return ""
    return (urlsplit(f"//{header}").hostname or "").lower()


def create_app(store: ReviewStore, data: TextData | None = None, *, export_dir: str | Path | None = None,
               token: str | None = None, loopback_only: bool = True):
    """The FastAPI application.

    Parameters
    ----------
    store : ReviewStore
        Items and edit log.
    data : TextData, optional
        The dataset, needed for export (export is disabled without it).
    export_dir : path, optional
        Folder that exports are written into.
    token : str, optional
        When set, every ``/api`` request must carry it (header ``X-Textshift-Token``); at least 16 URL-safe
        characters.
    loopback_only : bool
        Answer only requests addressed to a loopback host name.
    """
    from fastapi import Body, FastAPI, Query, Request
    from fastapi import Path as PathParam
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from textshift.review.export import ProtectedOutputError

    check_token(token)
    app = FastAPI(title="textshift review", docs_url=None, redoc_url=None, openapi_url=None)
    export_folder = Path(export_dir) if export_dir is not None else None

    @app.middleware("http")
    async def guard(request: Request, call_next):
        refused = _refusal(request, token=token, loopback_only=loopback_only)
        if refused is not None:
            response = JSONResponse({"error": refused[1]}, status_code=refused[0])
        else:
            try:
                response = await call_next(request)
            except Exception:  # answered here, not by Starlette, so a 500 carries the same headers as any other
                logger.exception("review server error on %s %s", request.method, request.url.path)
                response = JSONResponse({"error": "internal error of the review server; see its log. Edits the "
                                                  "page reported as saved are in the edit log"}, status_code=500)
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return _secured(response)

    @app.exception_handler(TextshiftError)
    async def user_error(_request: Request, exc: TextshiftError):
        # 409 only for "exists, may be replaced": the page then asks whether to overwrite.
        replaceable = not isinstance(exc, (ProtectedOutputError, ForeignOutputError))
        status = 409 if isinstance(exc, OutputExistsError) and replaceable else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return JSONResponse({"error": "bad request: the body is not valid JSON"}, status_code=400)
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "path", "query"))
        got = f"; got {shown(first['input'])}" if first.get("input") is not None else ""
        return JSONResponse({"error": f"bad request: {where or 'body'}: {first.get('msg', 'invalid')}{got}"},
                            status_code=400)

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/summary")
    def summary():
        payload = store.summary()
        payload["export"] = {"enabled": data is not None and export_folder is not None,
                             "folder": str(export_folder) if export_folder is not None else None,
                             "suggested_name": _suggested_name(data)}
        return payload

    @app.get("/api/items")
    def items(view: str = "suspicious", label: str | None = None, predicted: str | None = None,
              issue: str | None = None, min_score: float | None = None, max_score: float | None = None,
              q: str | None = None, status: str | None = None, offset: int = Query(0, ge=0, le=MAX_ROW),
              limit: int = Query(50, ge=1, le=500)):
        total, page = store.query(view=view, label=label or None, predicted=predicted or None, issue=issue or None,
                                  min_score=min_score, max_score=max_score, search=q or None,
                                  status=status or None, offset=offset, limit=limit)
        return {"total": total, "offset": offset, "limit": limit, "items": page}

    @app.get("/api/items/{row}")
    def item(row: int = PathParam(ge=0, le=MAX_ROW)):
        return store.item(row)

    @app.post("/api/edits")
    def edit(row: int = Body(..., strict=True, ge=0, le=MAX_ROW), action: str = Body(..., strict=True),
             label: str | None = Body(None, strict=True)):
        result = store.apply(row, action, label=label)  # committed before we answer
        return {"item": result, "summary": store.summary()}

    @app.post("/api/duplicates/{group}/keep")
    def keep_one(group: int = PathParam(ge=0, le=MAX_ROW), row: int = Body(..., embed=True, strict=True, ge=0,
                                                                            le=MAX_ROW)):
        return {"items": store.keep_one(group, row), "summary": store.summary()}

    @app.post("/api/undo")
    def undo(_body: dict | None = Body(None)):
        return {"items": store.undo(), "summary": store.summary()}

    @app.get("/api/edits")
    def edits(limit: int = Query(100, ge=1, le=10_000)):
        log = store.edits(limit=limit)
        return {"edits": log.astype(object).where(log.notna(), None).to_dict(orient="records")}

    @app.post("/api/export")
    def export(name: str = Body(..., strict=True), overwrite: bool = Body(False, strict=True)):
        from textshift.review.export import export_cleaned, safe_export_path

        if data is None or export_folder is None:
            raise ConfigError("export is not available: the server was started without the dataset; expected "
                              "`textshift review DATA`. Run `textshift review DATA --export cleaned.csv`")
        target = safe_export_path(export_folder, name)
        return export_cleaned(data, store, target, overwrite=overwrite).to_dict()

    return app


def _refusal(request, *, token: str | None, loopback_only: bool) -> tuple[int, str] | None:
    """The status and message a request is refused with before it reaches the API, or None to let it through."""
    if loopback_only and _host_name(request.headers.get("host")) not in LOOPBACK_NAMES:
        return 403, "this review server answers only on a loopback address"
    if not request.url.path.startswith("/api/"):
        return None
    supplied = request.headers.get(TOKEN_HEADER)
    if token is not None and (not supplied or not secrets.compare_digest(supplied.encode(), token.encode())):
        return 401, "missing or wrong token; open the URL printed by `textshift review`, which carries it"
    if request.method in ("GET", "HEAD"):
        return None
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return 415, "writes must be sent as application/json"
    origin = request.headers.get("origin")
    if origin == "null" or (origin and urlsplit(origin).netloc != request.headers.get("host")):
        return 403, "cross-origin write refused"
    length = request.headers.get("content-length")
    if length is None:
        return 411, "writes must carry a Content-Length header"
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return 413, f"request body too large; expected at most {MAX_BODY_BYTES:,} bytes"
    return None


def _secured(response):
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


def _suggested_name(data: TextData | None) -> str:
    if data is None:
        return "cleaned.csv"
    name = str(data.fingerprint.path)
    stem = Path(name.split(":", 1)[1] if name.startswith("embedded:") else name).name.split(".")[0]
    return f"{stem}-cleaned.csv"


class ReviewServer:
    """A running (or ready to run) review server: ``url``, ``start()`` in a background thread, ``stop()``.

    Created by :func:`textshift.review.start_review`; from a notebook, ``server = start_review(...)`` then open
    ``server.url``.
    """

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
                 store: ReviewStore | None = None):
        import uvicorn

        check_host(host)
        check_token(token)
        self.host = host
        self.token = token
        self.store = store
        self._socket = _bind(host, port)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"http://{host}:{self.port}/"
        return url + (f"?token={self.token}" if self.token else "")

    def run(self) -> None:
        """Serve in this thread until interrupted (Ctrl+C)."""
        self._server.run(sockets=[self._socket])

    def start(self, *, timeout: float = 20.0) -> ReviewServer:
        """Serve in a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.run, name=f"textshift-review-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the review server on {self.url} did not start; expected it within "
                                  f"{timeout:.0f}s. Check the log above")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving (edits are already on disk) and close the edit log."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self._socket.close()
        except OSError:
            pass
        if self.store is not None:
            self.store.close()

    def __repr__(self) -> str:
        return f"ReviewServer(url={self.url!r})"

    def _repr_html_(self) -> str:  # a notebook shows a link
        from html import escape

        return f'textshift review: <a href="{escape(self.url)}" target="_blank">{escape(self.url)}</a>'


def _bind(host: str, port: int) -> socket.socket:
    check_host(host)
    check_port(port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); expected an address of this "
                              "machine. Pass --host 127.0.0.1 (this machine only) or one of its own addresses") from exc
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); expected a free port. Pass another "
                          "--port, or --port 0 for any free one") from exc
    sock.listen(2048)  # connections made before uvicorn starts wait in the backlog instead of being refused
    return sock


def check_address(host: str, port: int) -> None:
    """Raise ConfigError now if the server could not listen on ``host``:``port`` (before minutes of scoring)."""
    _bind(host, port).close()


def new_token() -> str:
    return secrets.token_urlsafe(24)
