"""A real S3-compatible server in its own process on 127.0.0.1, for tests and benchmarks.

moto's standalone server (from PyPI; started as :mod:`fieldkit.testing.moto_s3`: its S3 backend
alone, without the per-request dispatch among all of moto's services) speaks the S3 REST protocol
over HTTP, conditional writes (``If-None-Match: *``) included; fieldkit reaches it with the same
client code it uses against AWS (obstore, or s3fs/botocore: :mod:`fieldkit.io.s3direct`), pointed
at it by ``endpoint_url``. moto keeps its objects in the server process's memory: a server that
is killed loses them, so an *outage* is
made with :meth:`S3Server.pause` / :meth:`S3Server.resume` (SIGSTOP / SIGCONT: connections hang,
then time out, as with a network partition) rather than a restart.

``FIELDKIT_TEST_S3_ENDPOINT`` (set by ``.ci/run``, which starts one server for the whole run)
makes :func:`s3_server` reuse that server instead of starting its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["S3Server", "s3_server", "start_s3_server", "TEST_CREDENTIALS", "S3_ENV", "TRANSPORTS"]

#: Set by .ci/run to the endpoint of the server it started for the whole run.
S3_ENV = "FIELDKIT_TEST_S3_ENDPOINT"

#: Storage options (added to the server's) that send a root through each S3 transport of the
#: adapter (fieldkit.io.s3direct): plain options go through obstore; an option only botocore
#: knows (here a user-agent suffix) through s3fs.
TRANSPORTS: dict[str, dict] = {"obstore": {}, "s3fs": {"config_kwargs": {"user_agent_extra": "fieldkit-test"}}}

#: Credentials moto accepts; exported into the environment so botocore's standard chain finds
#: them, exactly as it would find a user's real ones.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "fieldkit-test",
    "AWS_SECRET_ACCESS_KEY": "fieldkit-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    """A running server: its endpoint, and (when this process started it) its process."""

    endpoint: str
    process: subprocess.Popen | None = None

    @property
    def storage_options(self) -> dict[str, str]:
        """What ``[storage.options]`` needs to reach this server."""
        return {"endpoint_url": self.endpoint}

    def client(self):
        """A boto3 S3 client on this server (for tests' own checks)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            region_name=TEST_CREDENTIALS["AWS_DEFAULT_REGION"])

    def make_bucket(self, name: str | None = None) -> str:
        """Create a fresh bucket and return its name."""
        name = name or f"fk-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def pause(self) -> None:
        """Freeze the server (an outage: requests hang and time out)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        if self.process is None:
            raise RuntimeError("this server was not started by this process; it cannot be paused")
        os.kill(self.process.pid, sig)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_s3_server(port: int | None = None, timeout: float = 30.0) -> S3Server:
    """Start moto's S3 server on 127.0.0.1 in a new process and wait until it answers."""
    port = port or _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldkit.testing.moto_s3", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the S3 test server exited with {process.returncode} (is moto[server] installed?)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return S3Server(endpoint, process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the S3 test server did not answer on {endpoint} within {timeout:.0f} s")


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """A server for a test session: ``$FIELDKIT_TEST_S3_ENDPOINT``'s, else one started here."""
    for key, value in TEST_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    shared = os.environ.get(S3_ENV)
    server = S3Server(shared) if shared else start_s3_server()
    try:
        yield server
    finally:
        server.stop()
