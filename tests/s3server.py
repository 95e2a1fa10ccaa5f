"""A real S3-compatible server for the tests: moto's standalone server, started in this process
on a free local port (no AWS account, nothing leaves the machine). Each test gets its own bucket.

When moto (or s3fs) cannot be imported the fixtures skip, saying so: `pip install -e '.[dev]'`
installs them (scripts/bootstrap.sh does)."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "motionlib-test", "AWS_SECRET_ACCESS_KEY": "motionlib-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    def __init__(self):
        import logging

        from moto.server import ThreadedMotoServer

        # verbose=False still leaves werkzeug's access log on: one line per request on stderr
        # (thousands in scripts/bench_team.py, hiding its figures)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def bucket(self) -> str:
        """A new, empty bucket's name."""
        import boto3

        name = f"motionlib-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint, **_boto_credentials()).create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self._server.stop()


def _boto_credentials() -> dict:
    return {"aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "region_name": CREDENTIALS["AWS_DEFAULT_REGION"]}


@pytest.fixture(scope="session")
def s3_server():
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as err:
        pytest.skip(f"no S3-compatible server for the tests: {err} (pip install -e '.[dev]')")
    for k, v in CREDENTIALS.items():
        os.environ.setdefault(k, v)
    server = S3Server()
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint  # for worker processes the tests start
    yield server
    server.stop()


@pytest.fixture
def s3_store(s3_server) -> str:
    """An object-store URL of a fresh bucket (prefix ``lib``) on the test server."""
    return f"s3://{s3_server.bucket()}/lib?endpoint={s3_server.endpoint}"
