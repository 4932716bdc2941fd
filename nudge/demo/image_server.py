"""A small HTTP server for the demo catalogue's product pictures.

``nudge dev --demo`` and ``nudge preview`` run one, so that the emails they produce
show pictures instead of broken links. It serves ``/img/<product_id>.png`` for the
products it was given, drawn by ``images.product_image``; anything else is a 404.
A standard-library server in a thread: the pictures are a few kilobytes, drawn once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nudge.demo.images import CONTENT_TYPE, product_image

_PREFIX, _SUFFIX = "/img/", ".png"


def image_path(product_id: str) -> str:
    return f"{_PREFIX}{product_id}{_SUFFIX}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # the name http.server dispatches to
        body = self.server.picture(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404, "no such picture")
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=86400")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: ``nudge dev`` prints the mail it catches, not every picture fetched."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], products: Mapping[str, Mapping[str, Any]]):
        super().__init__(address, _Handler)
        self.products = products

    def picture(self, path: str) -> bytes | None:
        if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
            return None
        product = self.products.get(path[len(_PREFIX) : -len(_SUFFIX)])
        return product_image(product) if product is not None else None


class ImageServer:
    """Serves the pictures of ``catalog`` on ``host:port`` (0: any free port)."""

    def __init__(
        self, catalog: Iterable[Mapping[str, Any]], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._products = {str(p["product_id"]): p for p in catalog}
        self._server = _Server((host, port), self._products)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """What ``demo_catalog(image_base=...)`` takes: ``<base_url>/<id>.png`` is a picture."""
        return f"http://{self.host}:{self.port}{_PREFIX.rstrip('/')}"

    def start(self) -> ImageServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-images", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ImageServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
