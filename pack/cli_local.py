"""Commands that run things locally: invoke, local, upload, results."""

from __future__ import annotations

import csv
import json
import os
import signal
import tempfile
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote_plus, urlparse

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import InputError
from .pipeline import default_cache_dir

PASSED_THROUGH = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")


def s3_event(bucket: str, keys: list[str]) -> dict:
    """An S3 ObjectCreated:Put notification, keys encoded as S3 encodes them."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": os.environ.get("AWS_REGION", "us-east-1"),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/")},
                },
            }
            for key in keys
        ]
    }


def parse_s3_url(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise click.BadParameter(f"{url!r} is not s3://BUCKET/PREFIX")
    return parsed.netloc, parsed.path.lstrip("/")


def register(cli: click.Group) -> None:
    cli.add_command(invoke_command)
    cli.add_command(local_command)
    cli.add_command(upload_command)
    cli.add_command(results_command)


@click.command("invoke")
@click.argument("zip_path", metavar="ZIP", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--event",
    "event_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON event file.",
)
@click.option("--bucket", help="Build an S3 event for this bucket …")
@click.option("--key", "keys", multiple=True, help="… and this key (repeatable).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Function timeout in seconds.")
@click.option(
    "--memory", type=int, default=1024, show_default=True, help="Memory size reported to the function."
)
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="A function environment variable.")
def invoke_command(zip_path, event_file, bucket, keys, timeout, memory, env) -> None:
    """Run ZIP once in the local Lambda runtime (AWS's runtime interface client) and print the response."""
    from .cli import _env_pairs
    from .lambda_runtime import runtime_boto3, runtime_interface_client
    from .local.sandbox import FunctionSpec, Sandbox

    if event_file:
        event = json.loads(event_file.read_text())
    elif bucket and keys:
        event = s3_event(bucket, list(keys))
    else:
        raise click.UsageError("pass --event FILE, or --bucket B --key K")
    cache = default_cache_dir()
    runtime_paths = [runtime_boto3(cache), runtime_interface_client(cache)]
    passed = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    with tempfile.TemporaryDirectory(prefix="lambdapack-invoke-") as work:
        task = Path(work) / "task"
        zipfile.ZipFile(zip_path).extractall(task)
        spec = FunctionSpec(
            name=zip_path.stem,
            task_dir=task,
            timeout=timeout,
            memory=memory,
            environment=_env_pairs(env),
            region=os.environ.get("AWS_REGION", "us-east-1"),
        )
        sandbox = Sandbox(spec, runtime_paths, Path(work) / "sandbox", passed)
        try:
            result = sandbox.invoke(json.dumps(event).encode())
        finally:
            sandbox.stop()
    if result.logs:
        click.echo(result.logs.rstrip(), err=True)
    click.echo(result.report_line(spec), err=True)
    if result.ok:
        click.echo((result.payload or b"null").decode())
    else:
        click.echo(json.dumps(result.error, indent=2))
        raise SystemExit(1)


@click.command("local")
@click.option(
    "--port", type=int, default=4566, show_default=True, help="Port on 127.0.0.1 (0: any free one)."
)
@click.option(
    "--concurrency", type=int, default=None, help="Invocations at once (default: the number of cores)."
)
def local_command(port, concurrency) -> None:
    """Serve a local AWS (S3, Lambda, IAM, SQS, STS) on 127.0.0.1 that runs deployed functions.

    Objects created in a wired bucket invoke the deployed function's code in the
    local Lambda runtime, filtered by the bucket's notification configuration.
    """
    from .local.localaws import LocalAWS

    if port:
        import socket

        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise click.BadParameter(
                    f"127.0.0.1:{port} is not free ({exc.strerror}); pass another "
                    "--port, or --port 0 for any free one",
                    param_hint="--port",
                ) from exc
    console = Console()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalAWS(
        default_cache_dir(),
        port=port,
        concurrency=concurrency,
        log=lambda line: console.print(line, markup=False, highlight=False),
    ) as local:
        console.print(f"local AWS endpoint: {local.endpoint} — in another shell:", highlight=False)
        for key, value in local.client_environment().items():
            console.print(f"  export {key}={value}", highlight=False)
        console.print("then lambdapack deploy / wire / upload work against it. Ctrl-C stops.")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        stats = local.dispatcher.stats
        console.print(
            f"{stats.invocations} invocations, {stats.cold_starts} cold starts, "
            f"{stats.errors} errors, {len(stats.failures)} given up"
        )


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def upload_folder(
    folder: Path, bucket: str, prefix: str, client, workers: int = 8, progress: Progress | None = None
) -> list[str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    keys = [prefix + p.relative_to(folder).as_posix() for p in files]
    task = progress.add_task(f"uploading to s3://{bucket}/{prefix}", total=len(files)) if progress else None

    def put(item: tuple[Path, str]) -> None:
        path, key = item
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        if progress is not None:
            progress.advance(task)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, zip(files, keys, strict=True)))
    return keys


def progress_bar(console: Console | None = None) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
    )


@click.command("upload")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("destination", metavar="s3://BUCKET/PREFIX/")
def upload_command(folder, destination) -> None:
    """Upload the images in FOLDER to s3://BUCKET/PREFIX/, with a progress bar."""
    from .awsclient import default_session

    bucket, prefix = parse_s3_url(destination)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = default_session().client("s3")
    with progress_bar() as progress:
        keys = upload_folder(folder, bucket, prefix, client, progress=progress)
    click.echo(f"uploaded {len(keys)} images to s3://{bucket}/{prefix}")


def collect_results(bucket: str, prefix: str, client, workers: int = 8) -> list[dict]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(".json")]

    def read(key: str) -> dict:
        body = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        row = {
            "result": key,
            "input": body.get("input", {}).get("key", ""),
            "label": "",
            "score": "",
            "error": "",
        }
        if "error" in body:
            row["error"] = f"{body['error']['type']}: {body['error']['message']}"
        elif body.get("top_k"):
            row["label"] = body["top_k"][0]["label"]
            row["score"] = body["top_k"][0]["score"]
        return row

    with ThreadPoolExecutor(workers) as pool:
        return sorted(pool.map(read, keys), key=lambda r: r["input"])


def results_table(rows: list[dict], limit: int = 20) -> Table:
    table = Table(title=f"results ({len(rows)})", title_justify="left")
    for column in ("input", "label", "score", "error"):
        table.add_column(column)
    for row in rows[:limit]:
        table.add_row(row["input"], row["label"], str(row["score"]), row["error"])
    if len(rows) > limit:
        table.add_row(f"… {len(rows) - limit} more", "", "", "")
    return table


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["input", "label", "score", "error", "result"])
        writer.writeheader()
        writer.writerows(rows)


@click.command("results")
@click.argument("location", metavar="s3://BUCKET/PREFIX/")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write a CSV.")
def results_command(location, csv_path) -> None:
    """Collect the result objects under s3://BUCKET/PREFIX/ into a table (and CSV)."""
    from .awsclient import default_session

    bucket, prefix = parse_s3_url(location)
    rows = collect_results(bucket, prefix, default_session().client("s3"))
    console = Console()
    console.print(results_table(rows))
    errors = sum(1 for r in rows if r["error"])
    console.print(f"{len(rows) - errors} classified, {errors} errors")
    if csv_path:
        write_csv(rows, csv_path)
        console.print(f"wrote {csv_path}")
