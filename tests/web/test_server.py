"""The page's HTTP server against bad clients: oversized heads, slowloris, floods, wrong methods and paths.

Real sockets on 127.0.0.1; each test waits for the server's answer, never for a fixed time.
"""

from __future__ import annotations

import socket
import time

import pytest

from pibridge.web.server import MAX_HEAD, View, WebServer, json_response


class Counting(View):
    page = "bridge.html"

    def __init__(self):
        self.cuts = 0

    def routes(self):
        return {"/api/hello": lambda q: json_response({"hello": q.get("name", ["world"])[0]})}

    def actions(self):
        def cut():
            self.cuts += 1
            return json_response({"cut": self.cuts})
        return {"/api/cut": cut}


@pytest.fixture
def server():
    started = []

    def start(view=None, host="127.0.0.1", **kwargs) -> WebServer:
        web = WebServer(view or Counting(), host, 0, **kwargs).start()
        started.append(web)
        return web

    yield start
    for web in started:
        web.stop()


def exchange(web: WebServer, data: bytes, timeout: float = 5.0) -> bytes:
    """Send *data* on a fresh connection and read the whole answer (the server closes after one)."""
    with socket.create_connection(("127.0.0.1", web.port), timeout=timeout) as s:
        s.sendall(data)
        return read_all(s)


def read_all(s: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_get_the_page_static_files_and_json(server):
    web = server()
    page = exchange(web, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(page) == 200 and b"<canvas" not in page and b"/static/bridge.js" in page
    assert b"Content-Security-Policy: default-src 'self'" in page
    script = exchange(web, b"GET /static/chart.js HTTP/1.1\r\n\r\n")
    assert status(script) == 200 and b"class LineChart" in script
    hello = exchange(web, b"GET /api/hello?name=pi HTTP/1.0\r\n\r\n")
    assert status(hello) == 200 and hello.endswith(b'{"hello":"pi"}')
    head = exchange(web, b"HEAD /api/hello HTTP/1.0\r\n\r\n")
    assert status(head) == 200 and head.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("path", [b"/nothing", b"/static/../settings.py", b"/static/", b"/api/hello/x"])
def test_unknown_paths_are_404(server, path):
    assert status(exchange(server(), b"GET " + path + b" HTTP/1.0\r\n\r\n")) == 404


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"])
def test_other_methods_are_405_with_allow(server, method):
    answer = exchange(server(), method + b" /api/hello HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
    assert status(answer) == 405
    assert b"Allow: GET, HEAD\r\n" in answer


def test_an_action_needs_post_and_the_custom_header(server):
    view = Counting()
    web = server(view)
    assert status(exchange(web, b"GET /api/cut HTTP/1.0\r\n\r\n")) == 405
    # A form on another site can POST here, but cannot add a header without the CORS preflight we never grant.
    assert status(exchange(web, b"POST /api/cut HTTP/1.0\r\nContent-Length: 0\r\n\r\n")) == 403
    assert view.cuts == 0
    answer = exchange(web, b"POST /api/cut HTTP/1.0\r\nX-Pibridge: 1\r\nContent-Length: 0\r\n\r\n")
    assert status(answer) == 200 and view.cuts == 1
    big = exchange(web, b"POST /api/cut HTTP/1.0\r\nX-Pibridge: 1\r\nContent-Length: 999999\r\n\r\n")
    assert status(big) == 413 and view.cuts == 1


def test_a_huge_header_is_431_and_a_huge_request_line_414(server):
    web = server()
    assert status(exchange(web, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (2 * MAX_HEAD) + b"\r\n\r\n")) == 431
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(2000))
    assert status(exchange(web, b"GET / HTTP/1.1\r\n" + many + b"\r\n")) == 431
    assert status(exchange(web, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n")) == 414


def test_garbage_is_400(server):
    assert status(exchange(server(), b"\x16\x03\x01 hello there\r\n\r\n")) == 400


def test_slowloris_gets_408_once_the_head_deadline_passes_however_it_trickles(server):
    web = server(head_timeout=0.8)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", web.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\n")
        s.settimeout(0.1)
        answer = b""
        while not answer:
            try:
                s.send(b"X")  # one more byte of a header that never ends
                answer = s.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        assert time.monotonic() - started < 4
    assert status(answer) == 408


def test_connections_beyond_the_limit_get_503_at_once_and_the_rest_still_work(server):
    web = server(max_connections=2, head_timeout=10)
    held = [socket.create_connection(("127.0.0.1", web.port), timeout=5) for _ in range(2)]
    try:
        for s in held:
            s.sendall(b"GET / HTTP/1.1\r\n")  # an unfinished head keeps the connection's slot
        deadline = time.monotonic() + 5
        answer = b""
        while status_or_none(answer) != 503:
            assert time.monotonic() < deadline, answer
            answer = exchange(web, b"GET /api/hello HTTP/1.0\r\n\r\n")
        assert web.refused >= 1
        for s in held:
            s.sendall(b"\r\n")
            assert status(read_all(s)) == 200
    finally:
        for s in held:
            s.close()
    assert status(exchange(web, b"GET /api/hello HTTP/1.0\r\n\r\n")) == 200


def status_or_none(answer: bytes) -> int | None:
    return status(answer) if answer.startswith(b"HTTP/") else None


def test_ipv6_loopback(server):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    web = server(host="::1")
    assert web.url == f"http://[::1]:{web.port}/"
    with socket.create_connection(("::1", web.port), timeout=5) as s:
        s.sendall(b"GET /api/hello HTTP/1.0\r\n\r\n")
        assert status(read_all(s)) == 200
