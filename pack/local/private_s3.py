"""A private S3 for commands that run a function on local files (``invoke --image``,
``estimate``): moto's server on 127.0.0.1 with one bucket, for this call alone."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

from ..errors import ToolError


class PrivateS3:
    """An S3 of this call's own: moto's server on 127.0.0.1 with one bucket, for commands
    that run a function on local files (invoke --image, estimate). No access log."""

    bucket = "lambdapack-private"
    credentials: ClassVar[dict[str, str]] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }

    def __init__(self, region: str) -> None:
        self.region = region
        self.server = None
        self.endpoint = ""

    def __enter__(self) -> PrivateS3:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise ToolError(
                "this command needs moto's server for its private S3",
                'Install lambdapack with its local extra: pip install "lambdapack[local]".',
            ) from exc
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.stop()

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
        )

    def upload(self, images: list[Path], prefix: str) -> list[str]:
        """Each file under ``prefix``, numbered so that equal names stay apart; the keys."""
        client = self.client()
        keys = []
        for index, path in enumerate(images):
            key = f"{prefix}{index:04d}-{path.name}"
            client.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
            keys.append(key)
        return keys

    def function_environment(self) -> dict[str, str]:
        """What the function needs to reach this S3 (and nothing else)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **self.credentials}
