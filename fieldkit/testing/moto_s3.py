"""moto's standalone server, serving S3 alone: ``python -m fieldkit.testing.moto_s3 -p PORT``.

``python -m moto.server`` dispatches every request among all of moto's services: under one lock
shared by all its threads, it lists moto's modules on disk (an ``isdir`` per module) and parses
the request's signature to find the service, then logs the request to stderr. On the S3 test
server that was a third of its CPU and serialised concurrent requests (py-spy of a 1 h run with
its waveform stored: 2.8 s of the server's CPU, on the same two cores as the run it serves).
This entry point runs the same moto S3 backend and the same werkzeug server, with the dispatch
fixed to S3 (and ``/moto-api``) and no access log; requests are answered by moto's own code as
before.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, run_simple


class S3Dispatcher(DomainDispatcherApplication):
    """Every request to moto's S3 app (``/moto-api`` to moto's own), each made once."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._made = threading.Lock()

    def get_application(self, environ: dict[str, Any]) -> Any:
        backend = "moto_api" if str(environ.get("PATH_INFO", "")).startswith("/moto-api") else "s3"
        app = self.app_instances.get(backend)
        if app is None:
            with self._made:
                app = self.app_instances.get(backend)
                if app is None:
                    app = self.app_instances[backend] = self.create_app(backend)
        return app


class QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without the access log line per request."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    import os

    os.environ.setdefault("MOTO_PORT", str(args.port))
    run_simple(args.host, args.port, S3Dispatcher(), threaded=True, request_handler=QuietHandler)


if __name__ == "__main__":
    main()
