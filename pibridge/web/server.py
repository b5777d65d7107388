"""A small, defensive HTTP server for the page: the standard library's ``ThreadingHTTPServer``.

What a view (:class:`View`) supplies: the page, JSON and text answers for a few
paths, and (the simulator's page only) actions behind POST.  What this module
adds, so that no client, slow or malicious, can get in the bridge's way:

* every request runs in its own short-lived thread, never in a thread of the
  bridge; answers come from figures the view caches, not from the outbox;
* at most ``max_connections`` at once: one more is answered ``503`` and closed
  without a thread of its own;
* the request head (request line and headers) must arrive whole within
  ``head_timeout`` seconds (``408`` otherwise, which ends slowloris) and fit in
  ``MAX_HEAD`` bytes (``414`` for a request line that does not, ``431`` for
  headers); a body is refused (``413``) beyond ``MAX_BODY`` bytes;
* only GET and HEAD (``405`` for other methods, POST only where the view has an
  action), unknown paths get ``404``; one request per connection (HTTP/1.0),
  so a connection never lingers.

Threading: :meth:`WebServer.start` starts the accept loop in a thread named
``web``; each connection gets a thread ``web-request``.  Views are called from
those threads and must only read.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from io import BytesIO
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("pibridge.web")

#: Request line plus headers, in bytes.
MAX_HEAD = 8 * 1024
#: Longest request line (method, path, version).
MAX_REQUEST_LINE = 2 * 1024
#: Largest request body an action accepts (actions take no arguments).
MAX_BODY = 1024
#: Seconds for writing an answer.
WRITE_TIMEOUT = 10.0

STATIC_FILES = {
    "page.css": "text/css; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "bridge.js": "text/javascript; charset=utf-8",
    "sim.js": "text/javascript; charset=utf-8",
}


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data, default=str, separators=(",", ":")).encode(), "application/json")


def text_response(text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, text.encode("utf-8"), content_type)


class View:
    """What one page serves.  Subclasses fill :attr:`page` and :meth:`routes`, maybe :meth:`actions`."""

    #: The HTML file (in ``pibridge/web/static``) served at ``/``.
    page = ""

    def routes(self) -> dict[str, Callable[[dict[str, list[str]]], Response]]:
        """GET path -> handler taking the parsed query string."""
        return {}

    def actions(self) -> dict[str, Callable[[], Response]]:
        """POST path -> handler.  Read-only views have none."""
        return {}


def _static(name: str) -> bytes:
    return resources.files("pibridge.web").joinpath("static", name).read_bytes()


class _HeadTooLarge(Exception):
    def __init__(self, status: HTTPStatus):
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    server_version = "pibridge"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    # A request line too broken to name a version still gets a status line, not a bare HTTP/0.9 body.
    default_request_version = "HTTP/1.0"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(WRITE_TIMEOUT)

    def handle_one_request(self) -> None:
        # The head is read here, against a deadline and a size limit, and only then handed to
        # the standard parser: its own reading (a timeout per recv, 64 KiB per line, 100 lines)
        # would let a client trickle bytes for ever and hold large buffers.
        self.close_connection = True
        try:
            head = self._read_head()
        except _HeadTooLarge as exc:
            self._refuse(exc.status)
            return
        except TimeoutError:
            self._refuse(HTTPStatus.REQUEST_TIMEOUT)
            return
        except OSError:
            return
        if not head:
            return
        self.rfile = BytesIO(head)
        super().handle_one_request()

    def _read_head(self) -> bytes:
        deadline = time.monotonic() + self.server.head_timeout
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            line_end = data.find(b"\n")
            if (line_end < 0 and len(data) > MAX_REQUEST_LINE) or line_end > MAX_REQUEST_LINE:
                raise _HeadTooLarge(HTTPStatus.REQUEST_URI_TOO_LONG)
            if len(data) > MAX_HEAD:
                raise _HeadTooLarge(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.connection.settimeout(left)
            chunk = self.connection.recv(4096)
            if not chunk:
                return b""
            data += chunk
        self.connection.settimeout(WRITE_TIMEOUT)
        end = data.find(b"\r\n\r\n")
        end = end + 4 if end >= 0 else data.find(b"\n\n") + 2
        if end > MAX_HEAD:
            raise _HeadTooLarge(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        return data[:end]

    def _refuse(self, status: HTTPStatus) -> None:
        body = f"{status.value} {status.phrase}\n".encode()
        try:
            self.connection.sendall(
                f"HTTP/1.0 {status.value} {status.phrase}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )
        except OSError:
            pass

    # -- methods ------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._answer(self._route(), send_body=True)

    def do_HEAD(self) -> None:
        self._answer(self._route(), send_body=False)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        action = self.server.actions.get(path)
        if action is None:
            self._answer(self._not_allowed(path))
            return
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            self._answer(text_response("request body too large\n", HTTPStatus.REQUEST_ENTITY_TOO_LARGE))
            return
        # Cross-site pages may POST forms to localhost; a custom header forces a CORS preflight,
        # which this server never grants.
        if self.headers.get("X-Pibridge") != "1":
            self._answer(text_response("missing header X-Pibridge: 1\n", HTTPStatus.FORBIDDEN))
            return
        self._answer(self._call(action))

    def _not_allowed_method(self) -> None:
        self._answer(self._not_allowed(urlsplit(self.path).path))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed_method

    def _not_allowed(self, path: str) -> Response:
        allowed = "GET, HEAD, POST" if path in self.server.actions else "GET, HEAD"
        response = text_response(f"{self.command} is not allowed here; this page only answers {allowed}\n",
                                 HTTPStatus.METHOD_NOT_ALLOWED)
        response.headers["Allow"] = allowed
        return response

    # -- routing --------------------------------------------------------------------------

    def _route(self) -> Response:
        parts = urlsplit(self.path)
        path = parts.path
        if path in ("/", "/index.html"):
            return Response(200, self.server.page, "text/html; charset=utf-8")
        if path.startswith("/static/") and path[8:] in self.server.static:
            name = path[8:]
            return Response(200, self.server.static[name], STATIC_FILES[name], {"Cache-Control": "max-age=60"})
        handler = self.server.routes.get(path)
        if handler is None:
            if path in self.server.actions:
                return self._not_allowed(path)
            return text_response(f"nothing at {path}; try / for the page\n", HTTPStatus.NOT_FOUND)
        return self._call(lambda: handler(parse_qs(parts.query)))

    def _call(self, handler: Callable[[], Response]) -> Response:
        try:
            return handler()
        except Exception:
            log.exception("the web page's handler for %s failed", self.path)
            return text_response("internal error; see the log\n", HTTPStatus.INTERNAL_SERVER_ERROR)

    def _answer(self, response: Response, send_body: bool = True) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", response.headers.pop("Cache-Control", "no-store"))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 16

    def __init__(self, address, view: View, max_connections: int, head_timeout: float):
        self.head_timeout = head_timeout
        self.page = _static(view.page)
        self.static = {name: _static(name) for name in STATIC_FILES}
        self.routes = view.routes()
        self.actions = view.actions()
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                b"Retry-After: 1\r\nContent-Length: 25\r\nConnection: close\r\n\r\n"
                                b"too many connections now\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  name="web-request", daemon=True)
        thread.start()

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            # The client went away or stalled mid-answer: its business, not a fault of ours.
            log.debug("the web page's answer to %s was cut short: %s", client_address[0], error)
            return
        log.warning("the web page could not answer %s", client_address[0], exc_info=True)


class WebServer:
    """Serves *view* on *host*:*port* (port 0: any free one; see :attr:`port`) until :meth:`stop`."""

    def __init__(self, view: View, host: str = "127.0.0.1", port: int = 8088, *, max_connections: int = 4,
                 head_timeout: float = 5.0):
        self.view = view
        self._server = _Server((host, port), view, max_connections, head_timeout)
        self.host = host
        self.port = self._server.server_address[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/"

    @property
    def refused(self) -> int:
        """Connections turned away because ``max_connections`` were busy."""
        return self._server.refused

    def start(self) -> "WebServer":
        self._thread.start()
        return self

    def _serve(self) -> None:
        # Blocks in accept until a connection comes (no polling: an idle page costs no wake-ups);
        # stop() connects once itself to end the wait.
        while not self._stopping.is_set():
            self._server.handle_request()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            host = "::1" if self._server.address_family == socket.AF_INET6 else "127.0.0.1"
            if self.host not in ("0.0.0.0", "::", ""):
                host = self.host
            try:
                socket.create_connection((host, self.port), timeout=1).close()
            except OSError:
                pass
            self._thread.join(5)
        self._server.server_close()
