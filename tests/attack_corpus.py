"""Hostile sources for the worker: a misbehaving HTTP server on 127.0.0.1 and crafted images.

Each `AttackCase` is a path on the server (or an upload) and the failure code the worker
must end it with. The server speaks raw sockets so it can do what no polite server does:
trickle the status line, the headers or the body a byte at a time, stream chunks without
end, lie in Content-Length, and send gzip bombs. `TRICKLE_INTERVAL` is kept under the read
timeout the tests configure, so only the attempt's overall deadline can stop a trickle.
Used by tests/test_attacks.py and bench/attack_cases.py.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from PIL import Image

JPEG_MAGIC = b"\xff\xd8\xff\xe0"


@dataclass(frozen=True)
class AttackCase:
    name: str
    path: str  # on the hostile server; "upload:<name>" for an uploaded file
    code: str  # how the worker must end it
    note: str


CASES = (
    AttackCase("trickled status line", "/trickle-status", "timeout", "one byte of the status line per interval"),
    AttackCase("trickled headers", "/trickle-headers", "timeout", "status at once, then a header a byte at a time"),
    AttackCase("trickled body", "/trickle-body", "timeout", "a JPEG's magic, then a byte per interval"),
    AttackCase("endless chunks", "/endless-chunks", "too_large", "chunked transfer that never ends"),
    AttackCase("short body, held open", "/length-hold", "timeout", "Content-Length 100000, 1000 bytes, silence"),
    AttackCase("short body, closed", "/length-close", "connection_error", "Content-Length 100000, 1000 bytes, close"),
    AttackCase("huge Content-Length", "/length-huge", "too_large", "declares a terabyte"),
    AttackCase("gzip bomb", "/gzip-bomb", "too_large", "Content-Encoding gzip of endless zeros"),
    AttackCase("double gzip bomb", "/gzip-gzip-bomb", "too_large", "gzip inside gzip"),
    AttackCase("quadratic HTML", "/meta-flood", "no_image_in_page", "200 KB of `<meta ` (the old regex: quadratic)"),
    AttackCase("unclosed HTML", "/unclosed-page", "no_image_in_page", "2 MB page: one `<meta` that never closes"),
    AttackCase("post page to a trickle", "/og-trickle", "timeout", "a page whose og:image trickles"),
    AttackCase("scan bomb", "/scan-bomb.jpg", "too_complex", "progressive JPEG, 6600x6000, 4000 scans"),
    AttackCase("scan bomb upload", "upload:scan-bomb.jpg", "too_complex", "the same, uploaded"),
    AttackCase("truncated JPEG", "/truncated.jpg", "corrupt_image", "632 bytes + EOI, declares 6600x6000"),
    AttackCase("1 x 39,000,000 PNG", "/tall.png", "too_large", "76 KB, one pixel wide"),
    AttackCase("20000 x 20 PNG", "/strip.png", "bad_aspect_ratio", "1000:1, under every size limit"),
)


# --- crafted images -------------------------------------------------------------------------------


def jpeg_segments(data: bytes) -> list[bytes]:
    """A JPEG split into marker segments, each scan with its entropy-coded data."""
    segments, at = [], 2
    while at < len(data):
        marker = data[at + 1]
        if marker == 0xD9:
            segments.append(data[at : at + 2])
            break
        end = at + 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker == 0xDA:
            while True:
                end = data.index(b"\xff", end)
                if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                    end += 2
                    continue
                break
        segments.append(data[at:end])
        at = end
    return segments


@cache
def scan_bomb(width: int = 6600, height: int = 6000, scans: int = 4000) -> bytes:
    """A progressive JPEG whose last AC refinement scan (with its Huffman table) repeats `scans` times.

    Each refinement scan walks every coefficient of every block, so the decode costs
    scans x pixels while the file stays small (libjpeg only warns about the bogus progression).
    """
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "JPEG", progressive=True, quality=50)
    segments = jpeg_segments(buffer.getvalue())
    refine = max(i for i, s in enumerate(segments) if s[1] == 0xDA and s[7] == 1 and s[9] == 0x10)
    repeated = (segments[refine - 1] + segments[refine]) * scans
    return b"\xff\xd8" + b"".join(segments[: refine + 1]) + repeated + b"".join(segments[refine + 1 :])


@cache
def truncated_jpeg(size: int = 632) -> bytes:
    """The first `size` bytes of a 6600x6000 JPEG, closed with an EOI marker: libjpeg fills the rest grey."""
    buffer = io.BytesIO()
    Image.new("RGB", (6600, 6000), (90, 120, 150)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()[:size] + b"\xff\xd9"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@cache
def gray_png(width: int, height: int) -> bytes:
    """A valid all-black 8-bit grayscale PNG, compressed row by row (no large buffer)."""
    compressor, row, parts = zlib.compressobj(9), b"\x00" * (width + 1), []
    block = row * max(1, 1_000_000 // len(row))
    rows_per_block = len(block) // len(row)
    for start in range(0, height, rows_per_block):
        parts.append(compressor.compress(block if start + rows_per_block <= height else row * (height - start)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def good_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 140, 160)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


FILES: dict[str, Callable[[], bytes]] = {
    "/scan-bomb.jpg": scan_bomb,
    "/truncated.jpg": truncated_jpeg,
    "/tall.png": lambda: gray_png(1, 39_000_000),
    "/strip.png": lambda: gray_png(20_000, 20),
    "/good.jpg": good_jpeg,
}


def upload_bytes(case: AttackCase) -> bytes:
    return FILES["/" + case.path.removeprefix("upload:")]()


# --- the hostile server ---------------------------------------------------------------------------


class HostileServer:
    """A raw-socket HTTP server on 127.0.0.1: one thread per connection, each route misbehaving on purpose."""

    def __init__(self, trickle_interval: float = 0.5, trickle_for: float = 600.0):
        self.trickle_interval = trickle_interval
        self.trickle_for = trickle_for  # a trickle gives up after this long, so no thread outlives a test run
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self.listener.getsockname()[1]
        self.hits: list[str] = []
        self.stopped = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve_forever(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self.handle, args=(connection,), daemon=True).start()

    def handle(self, connection: socket.socket) -> None:
        with connection:
            try:
                path = self.read_request(connection)
                self.hits.append(path)
                self.route(path)(connection)
            except OSError:
                pass  # the client hung up: expected for every case that it must abandon

    @staticmethod
    def read_request(connection: socket.socket) -> str:
        connection.settimeout(10)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 65536:
            chunk = connection.recv(4096)
            if not chunk:
                break
            request += chunk
        return request.split(b" ", 2)[1].decode("latin-1") if request.count(b" ") >= 2 else "/"

    def route(self, path: str) -> Callable[[socket.socket], None]:
        routes = {
            "/trickle-status": self.trickle_status,
            "/trickle-headers": self.trickle_headers,
            "/trickle-body": self.trickle_body,
            "/endless-chunks": self.endless_chunks,
            "/length-hold": lambda c: self.short_body(c, hold=True),
            "/length-close": lambda c: self.short_body(c, hold=False),
            "/length-huge": self.huge_length,
            "/gzip-bomb": lambda c: self.gzip_bomb(c, layers=1),
            "/gzip-gzip-bomb": lambda c: self.gzip_bomb(c, layers=2),
            "/meta-flood": lambda c: self.page(c, b"<html><head>" + b"<meta " * 40_000),
            "/unclosed-page": lambda c: self.page(c, b'<html><head><meta content="' + b"x" * 2_000_000),
            "/og-trickle": lambda c: self.page(
                c, f'<html><head><meta property="og:image" content="{self.url("/trickle-body")}">'.encode()
            ),
        }
        if path in routes:
            return routes[path]
        if path in FILES:
            return lambda c: self.send(c, FILES[path](), "image/png" if path.endswith(".png") else "image/jpeg")
        return lambda c: c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def trickle(self, connection: socket.socket, data: Iterator[bytes]) -> None:
        """Send `data` one piece per interval, for at most `trickle_for` seconds."""
        until = time.monotonic() + self.trickle_for
        for piece in data:
            if self.stopped.is_set() or time.monotonic() > until:
                return
            connection.sendall(piece)
            time.sleep(self.trickle_interval)

    @staticmethod
    def forever(piece: bytes) -> Iterator[bytes]:
        while True:
            yield piece

    def trickle_status(self, connection: socket.socket) -> None:
        self.trickle(connection, (bytes([b]) for b in b"HTTP/1.1 200 " + b"O" * 60_000))

    def trickle_headers(self, connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nX-Padding: ")
        self.trickle(connection, self.forever(b"a"))

    def trickle_body(self, connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n" + JPEG_MAGIC)
        self.trickle(connection, self.forever(b"\x00"))

    def endless_chunks(self, connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = JPEG_MAGIC + b"\x00" * 65532
        while not self.stopped.is_set():
            connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def short_body(self, connection: socket.socket, hold: bool) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
        connection.sendall(head + JPEG_MAGIC + b"\x00" * 996)
        if hold:
            self.stopped.wait(self.trickle_for)

    @staticmethod
    def huge_length(connection: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000000000\r\n\r\n"
        connection.sendall(head + JPEG_MAGIC + b"\x00" * 65536)

    def gzip_bomb(self, connection: socket.socket, layers: int) -> None:
        """JPEG magic and then zeros without end, gzip-compressed `layers` times, generated as it is sent."""
        encoding = ", ".join(["gzip"] * layers).encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Encoding: " + encoding
        connection.sendall(head + b"\r\nConnection: close\r\n\r\n")
        compressors = [zlib.compressobj(9, zlib.DEFLATED, 31) for _ in range(layers)]

        def compress(data: bytes) -> bytes:
            for compressor in compressors:
                data = compressor.compress(data)
            return data

        def flush() -> bytes:  # force the layers to emit what they hold, so bytes keep flowing
            data = b""
            for compressor in compressors:
                data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            return data

        zeros, sent = b"\x00" * (1 << 20), 0
        connection.sendall(compress(JPEG_MAGIC) + flush())
        while not self.stopped.is_set() and sent < 64 << 30:  # 64 GiB of zeros at most
            out = compress(zeros)
            sent += len(zeros)
            if sent % (16 << 20) == 0:
                out += flush()
            if out:
                connection.sendall(out)

    @staticmethod
    def page(connection: socket.socket, body: bytes) -> None:
        HostileServer.send(connection, body, "text/html; charset=utf-8")

    @staticmethod
    def send(connection: socket.socket, body: bytes, content_type: str) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        connection.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


@contextmanager
def hostile_server(trickle_interval: float = 0.5, trickle_for: float = 600.0) -> Iterator[HostileServer]:
    for make in FILES.values():  # made (and cached) before serving: a slow first answer would look like a timeout
        make()
    server = HostileServer(trickle_interval, trickle_for)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.close()
        thread.join(timeout=5)
