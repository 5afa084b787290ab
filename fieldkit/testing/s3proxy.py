"""A counting relay in front of the S3 test server: the requests a client sent, as seen on the wire.

Tests that hold fieldkit to a number of requests (a shard is one PUT per variable, an archived
file of known size one GET) count them here, whatever client library sends them (s3fs/botocore or
obstore): :class:`RequestCounter` listens on 127.0.0.1, relays every byte to the server unchanged,
and reads the request heads on the way (method, path, query; a body is skipped by its
``Content-Length`` or its chunks) into :attr:`RequestCounter.requests`. Point the client's
``endpoint_url`` at :attr:`RequestCounter.endpoint`.

With ``refuse_conditional=True`` it plays an S3 service without conditional writes (older MinIO
or Ceph): a request carrying ``If-None-Match`` is answered ``501 NotImplemented`` as such a
service answers, and never reaches the server.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from urllib.parse import parse_qs, urlsplit

__all__ = ["RequestCounter", "operation"]


def operation(method: str, target: str) -> str:
    """The S3 operation of a request line, by S3's REST rules (enough for tests' counts)."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    has_key = parts.path.strip("/").count("/") >= 1
    if method == "GET":
        if not has_key:
            return "ListObjectsV2" if "list-type" in query else "ListObjects"
        return "GetObject"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPart"
        return "PutObject" if has_key else "CreateBucket"
    if method == "POST":
        if "delete" in query:
            return "DeleteObjects"
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return f"{method} {parts.path}"


class RequestCounter:
    """A relay on 127.0.0.1 in front of ``upstream`` (``http://host:port``) that counts requests."""

    def __init__(self, upstream: str, *, refuse_conditional: bool = False) -> None:
        self.refuse_conditional = refuse_conditional
        host, port = urlsplit(upstream).hostname, urlsplit(upstream).port
        self._upstream = (host or "127.0.0.1", port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests: list[tuple[str, str]] = []  # (method, target) in arrival order
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="s3-request-counter", daemon=True).start()

    # -- what tests read
    def operations(self) -> Counter:
        with self._lock:
            return Counter(operation(method, target) for method, target in self.requests)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> RequestCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the relay
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self._upstream)
        except OSError:
            client.close()
            return
        threading.Thread(target=_pipe, args=(server, client), daemon=True).start()
        reader = client.makefile("rb")
        try:
            while True:
                head = _read_head(reader)
                if head is None:
                    break
                method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
                with self._lock:
                    self.requests.append((method, target))
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:] if line)}
                refused = self.refuse_conditional and "if-none-match" in headers
                sink = _Discard() if refused else server
                if not refused:
                    server.sendall(head)
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    _relay_chunked(reader, sink)
                else:
                    _relay_exactly(reader, sink, int(headers.get("content-length") or 0))
                if refused:
                    client.sendall(_NOT_IMPLEMENTED)
                    break
        except OSError:
            pass
        finally:
            for sock in (server, client):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


_ERROR = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code><Message>A header you '
          b'provided implies functionality that is not implemented</Message><Header>If-None-Match</Header></Error>')
_NOT_IMPLEMENTED = (b"HTTP/1.1 501 Not Implemented\r\nContent-Type: application/xml\r\nConnection: close\r\n"
                    b"Content-Length: " + str(len(_ERROR)).encode() + b"\r\n\r\n" + _ERROR)


class _Discard:
    """Where the body of a refused request goes."""

    def sendall(self, data: bytes) -> None:
        pass


def _read_head(reader) -> bytes | None:
    lines = []
    while True:
        line = reader.readline(65537)
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _relay_exactly(reader, server: socket.socket, n: int) -> None:
    while n > 0:
        data = reader.read(min(n, 1 << 20))
        if not data:
            raise OSError("the client closed mid-body")
        server.sendall(data)
        n -= len(data)


def _relay_chunked(reader, server: socket.socket) -> None:
    while True:
        size_line = reader.readline(65537)
        server.sendall(size_line)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:  # trailers up to the empty line
            while (line := reader.readline(65537)) not in (b"\r\n", b"\n", b""):
                server.sendall(line)
            server.sendall(b"\r\n")
            return
        _relay_exactly(reader, server, size + 2)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    """Answers back to the client as they come; the server closing closes the client too."""
    try:
        while data := source.recv(1 << 20):
            target.sendall(data)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
