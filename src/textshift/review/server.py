"""The review web app: a FastAPI JSON API over a :class:`~textshift.review.store.ReviewStore` and one static page.

Security, in layers:

* the server binds 127.0.0.1 unless told otherwise; on a loopback address it answers only requests whose
  ``Host`` is a loopback name (a page on another site cannot reach it through DNS rebinding);
* bound to any other address, every API call needs the random token printed with the URL;
* writes must be JSON (a cross-site form cannot send it) and a cross-origin ``Origin`` is refused;
* the page builds the DOM with ``textContent`` only and a Content-Security-Policy forbids inline scripts, so
  dataset text such as ``<script>`` is shown, never run;
* exports go to a plain file name inside the export folder (:func:`~textshift.review.export.safe_export_path`).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import secrets
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from textshift.data import TextData
from textshift.errors import ConfigError, OutputExistsError, TextshiftError
from textshift.review.store import ReviewStore

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
TOKEN_HEADER = "x-textshift-token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
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
        When set, every ``/api`` request must carry it (header ``X-Textshift-Token``).
    loopback_only : bool
        Answer only requests addressed to a loopback host name.
    """
    from fastapi import Body, FastAPI, Query, Request
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    app = FastAPI(title="textshift review", docs_url=None, redoc_url=None, openapi_url=None)
    export_folder = Path(export_dir) if export_dir is not None else None

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if loopback_only and _host_name(request.headers.get("host")) not in LOOPBACK_NAMES:
            return _secured(JSONResponse({"error": "this review server answers only on a loopback address"},
                                         status_code=403))
        if request.url.path.startswith("/api/"):
            if token is not None and not secrets.compare_digest(
                    request.headers.get(TOKEN_HEADER, "").encode(), token.encode()):
                return _secured(JSONResponse({"error": "missing or wrong token; open the URL printed by "
                                                       "`textshift review`, which carries it"}, status_code=401))
            if request.method not in ("GET", "HEAD"):
                if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                    return _secured(JSONResponse({"error": "writes must be sent as application/json"},
                                                 status_code=415))
                origin = request.headers.get("origin")
                if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
                    return _secured(JSONResponse({"error": "cross-origin write refused"}, status_code=403))
                if origin == "null":
                    return _secured(JSONResponse({"error": "cross-origin write refused"}, status_code=403))
        response = await call_next(request)
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return _secured(response)

    @app.exception_handler(TextshiftError)
    async def user_error(_request: Request, exc: TextshiftError):
        status = 409 if isinstance(exc, OutputExistsError) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

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
              q: str | None = None, status: str | None = None, offset: int = Query(0, ge=0),
              limit: int = Query(50, ge=1, le=500)):
        total, page = store.query(view=view, label=label or None, predicted=predicted or None, issue=issue or None,
                                  min_score=min_score, max_score=max_score, search=q or None,
                                  status=status or None, offset=offset, limit=limit)
        return {"total": total, "offset": offset, "limit": limit, "items": page}

    @app.get("/api/items/{row}")
    def item(row: int):
        return store.item(row)

    @app.post("/api/edits")
    def edit(row: int = Body(...), action: str = Body(...), label: str | None = Body(None)):
        result = store.apply(row, action, label=label)  # committed before we answer
        return {"item": result, "summary": store.summary()}

    @app.post("/api/duplicates/{group}/keep")
    def keep_one(group: int, row: int = Body(..., embed=True)):
        return {"items": store.keep_one(group, row), "summary": store.summary()}

    @app.post("/api/undo")
    def undo(_body: dict | None = Body(None)):
        return {"items": store.undo(), "summary": store.summary()}

    @app.get("/api/edits")
    def edits(limit: int = Query(100, ge=1, le=10_000)):
        log = store.edits(limit=limit)
        return {"edits": log.astype(object).where(log.notna(), None).to_dict(orient="records")}

    @app.post("/api/export")
    def export(name: str = Body(...), overwrite: bool = Body(False)):
        from textshift.review.export import export_cleaned, safe_export_path

        if data is None or export_folder is None:
            raise ConfigError("export is not available: the server was started without the dataset; expected "
                              "`textshift review DATA`. Run `textshift review DATA --export cleaned.csv`")
        target = safe_export_path(export_folder, name)
        return export_cleaned(data, store, target, overwrite=overwrite).to_dict()

    return app


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
