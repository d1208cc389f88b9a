"""The local AWS end to end: deploy and wire against moto's server, then
objects put into the bucket run the deployed code in the local runtime —
selected by the bucket's real notification filters, N at once, with
Lambda's asynchronous retries."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import threading
import time
import zipfile
from urllib.parse import unquote_plus

import moto
import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.aws.owner import role_name
from lambdapack.aws.wire import WireSettings, wire
from lambdapack.handler.lambdapack_handler.contract import BUILD_RECORD
from lambdapack.local import motoseam
from lambdapack.local.localaws import LocalAWS

from .conftest import SAMPLE, point_at

pytestmark = pytest.mark.functional

SLOW = """
import json, time, boto3
from urllib.parse import unquote_plus
s3 = boto3.client("s3")
def handler(event, context):
    record = event["Records"][0]
    start = time.time()
    time.sleep(0.4)
    key = "results/timing/" + unquote_plus(record["s3"]["object"]["key"])  # where its role may write
    s3.put_object(Bucket=record["s3"]["bucket"]["name"], Key=key,
                  Body=json.dumps({"start": start, "end": time.time()}))
    return {"ok": True}
"""
FAILING = """
def handler(event, context):
    raise RuntimeError("always fails")
"""


def function_zip(path, source: str):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.py", source)
        archive.writestr(
            BUILD_RECORD, json.dumps({"target": {"runtime": "python3.11", "architecture": "x86_64"}})
        )
    return path


def deploy_and_wire(zip_path, name: str, prefix: str = "incoming/"):
    deploy(DeploySettings(zip_path, name, bucket="photos", prefix=prefix), AWSClient(), log=lambda _: None)
    wire(WireSettings(name, "photos", prefix=prefix), AWSClient())


def test_the_seam_is_the_one_this_moto_has():
    assert moto.__version__.startswith("5.2.")
    from moto.s3 import notifications

    assert callable(getattr(notifications, motoseam.SEAM))
    # the asynchronous Invoke seam: moto's backend method, called by its responses with these
    from moto.awslambda.models import LambdaBackend

    parameters = list(inspect.signature(LambdaBackend.invoke).parameters)
    assert parameters == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]


def test_the_backend_lookup_is_remembered_and_still_right():
    """moto's host -> service lookup lists its package folder on every request; the local
    AWS's server remembers each answer, and the answers are moto's own."""
    app = motoseam.dispatcher_app()
    hosts = {
        "s3.amazonaws.com": "s3",
        "lambda.us-east-1.amazonaws.com": "awslambda",
        "logs.us-east-1.amazonaws.com": "logs",
        "iam.amazonaws.com": "iam",
    }
    for host, service in [*hosts.items(), ("s3.amazonaws.com", "s3")]:
        assert app.get_backend_for_host(host) == service
    info = app.get_backend_for_host.cache_info()
    assert (info.hits, info.misses) == (1, len(hosts))


def test_moto_keeps_connections_alive(local):
    """werkzeug's server closed every connection (a TCP connection and a thread per S3
    call); the local AWS's keeps them open: a PUT and the GET after it share one. A chunked
    body (no length to bound it by) closes the connection after its answer."""
    import http.client
    from urllib.parse import urlsplit

    endpoint = urlsplit(local.endpoint)
    body = os.urandom(70_000)
    connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    connection.request("PUT", "/photos/a.bin", body=body, headers=signed_s3(local, "PUT", "a.bin", body))
    stored = connection.getresponse()
    stored.read()
    assert stored.status == 200 and stored.getheader("Connection") is None
    first_socket = connection.sock
    connection.request("GET", "/photos/a.bin", headers=signed_s3(local, "GET", "a.bin"))
    read_back = connection.getresponse()
    assert read_back.status == 200 and read_back.read() == body
    assert connection.sock is first_socket  # one TCP connection for both
    headers = signed_s3(local, "PUT", "c.bin")
    connection.request("PUT", "/photos/c.bin", body=iter([b"c" * 100]), headers=headers, encode_chunked=True)
    answer = connection.getresponse()
    answer.read()
    assert answer.getheader("Connection") == "close"
    connection.close()


def signed_s3(local, method: str, key: str, body: bytes = b"") -> dict[str, str]:
    """Headers of an S3 request signed with the local AWS's administrator keys (its access
    control answers nothing else)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method, f"{local.endpoint}/photos/{key}", data=body)
    keys = Credentials(local.credentials["AWS_ACCESS_KEY_ID"], local.credentials["AWS_SECRET_ACCESS_KEY"])
    S3SigV4Auth(keys, "s3", "us-east-1").add_auth(request)
    return dict(request.headers)


@contextlib.contextmanager
def serving(app):
    """``app`` behind the local AWS's server (moto's handler, connections kept alive)."""
    from werkzeug.serving import make_server

    server = make_server(
        "127.0.0.1",
        0,
        motoseam.marking_failures(app),
        threaded=True,
        request_handler=motoseam.keep_alive_handler(),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def test_a_kept_alive_connection_skips_a_body_the_application_did_not_read():
    """The next request starts where the previous body ends, read or not (werkzeug drains
    whatever the socket holds after a response: here that is only the body's rest)."""
    import http.client

    def app(environ, start_response):
        answer = b"ignored"
        if environ["PATH_INFO"] == "/read":
            answer = str(len(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))).encode()
        start_response("200 OK", [("Content-Length", str(len(answer)))])
        return [answer]

    with serving(app) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        answers = []
        for path, size in (("/ignore", 300_000), ("/read", 1_000), ("/ignore", 5), ("/read", 70_000)):
            connection.request("PUT", path, body=b"x" * size)
            response = connection.getresponse()
            answers.append((response.status, response.read()))
            if path == "/ignore" and size == 300_000:
                first_socket = connection.sock
        assert answers == [(200, b"ignored"), (200, b"1000"), (200, b"ignored"), (200, b"70000")]
        assert connection.sock is first_socket
        connection.close()


def test_a_kept_alive_connection_ends_where_it_cannot_go_on(capfd):
    """A client gone mid-body (a function killed during its upload) costs no traceback; a
    response the application failed in after its headers, and http.server's own error
    answers, end the connection, so the client sees the end at once instead of waiting for
    the rest of a body."""
    import http.client
    import socket

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/fails-midway":
            start_response("200 OK", [("Content-Length", "100")])
            yield b"part of it"
            raise RuntimeError("failed while sending the body")
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Length", "2")])
        yield b"ok"

    with serving(app) as port:
        gone = socket.create_connection(("127.0.0.1", port))
        gone.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        gone.close()

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/fails-midway")
        response = connection.getresponse()
        began = time.monotonic()
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        assert time.monotonic() - began < 5  # not the client's 30 s timeout

        too_long = socket.create_connection(("127.0.0.1", port))
        too_long.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        too_long.settimeout(30)
        answer = b""
        while chunk := too_long.recv(65536):  # the server closes after its answer
            answer += chunk
        too_long.close()
        assert answer.startswith(b"HTTP/1.1 431") and b"Connection: close" in answer
        time.sleep(0.3)
    err = capfd.readouterr().err
    assert "ClientDisconnected" not in err and "Exception occurred" not in err, err


def test_log_lines_sent_to_motos_process_are_what_the_logs_api_returns(local):
    now = int(time.time() * 1000)  # CloudWatch Logs refuses events older than 14 days
    events = [{"timestamp": now + n, "message": f"line {n}"} for n in range(3)]
    for part in (events[:2], events[2:]):
        reply = local._request({"logs": ["123456789012", "us-east-1", "/aws/lambda/f", "s1", part]})
        assert reply["reply"] == "ok"
    read = local.client("logs").get_log_events(
        logGroupName="/aws/lambda/f", logStreamName="s1", startFromHead=True
    )
    assert [event["message"] for event in read["events"]] == ["line 0", "line 1", "line 2"]
    refused = local._request({"logs": ["123456789012", "us-east-1", "/aws/lambda/f", "s1", [{"bad": 1}]]})
    assert refused["reply"] == "error" and refused["error"]


def test_deployed_code_is_unzipped_before_the_first_invocation(local, tmp_path):
    """As Lambda prepares a function while it is Pending: the zip moto stores is unpacked
    at once (read-only), not in the first cold start; new code is unpacked beside it."""
    deploy_and_wire(function_zip(tmp_path / "f.zip", FAILING), "early")
    sha = local.client("lambda").get_function(FunctionName="early")["Configuration"]["CodeSha256"]
    folder = local.workdir / "code" / sha.replace("/", "_").replace("+", "-").rstrip("=")
    deadline = time.monotonic() + 30
    while not (folder / "index.py").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (folder / "index.py").read_text() == FAILING
    assert not (folder / "index.py").stat().st_mode & 0o222  # read-only, as /var/task
    assert local.dispatcher.stats.invocations == 0


def test_an_upload_under_the_prefix_runs_the_deployed_zip_and_writes_its_result(local, packed, tmp_path):
    out, _, _ = packed
    zip_path = shutil.copy(out / "function.zip", tmp_path / "function.zip")
    deploy_and_wire(zip_path, "digits")
    s3 = local.client("s3")
    s3.put_object(
        Bucket="photos", Key="incoming/seven 7.png", Body=(SAMPLE / "heldout" / "digit-0021.png").read_bytes()
    )
    s3.put_object(Bucket="photos", Key="elsewhere/ignored.png", Body=b"not under the prefix")
    assert local.wait_idle(120)
    result = json.loads(
        s3.get_object(Bucket="photos", Key="results/incoming/seven 7.png.json")["Body"].read()
    )
    assert result["input"]["key"] == "incoming/seven 7.png"
    assert result["top_k"][0]["label"] == "1"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="photos").get("Contents", [])]
    assert "results/elsewhere/ignored.png.json" not in keys
    assert local.dispatcher.stats.invocations == 1 and local.dispatcher.stats.cold_starts == 1


def test_concurrency_is_bounded_by_n(local, tmp_path):
    deploy_and_wire(function_zip(tmp_path / "slow.zip", SLOW), "slow")
    s3 = local.client("s3")
    for number in range(6):
        s3.put_object(Bucket="photos", Key=f"incoming/{number}.png", Body=b"x")
    assert local.wait_idle(60)
    spans = [
        json.loads(s3.get_object(Bucket="photos", Key=f"results/timing/incoming/{n}.png")["Body"].read())
        for n in range(6)
    ]
    # the most invocations that ran at the same moment, as the functions saw it
    overlap = max(
        sum(1 for other in spans if other["start"] <= span["start"] < other["end"]) for span in spans
    )
    assert overlap == 2
    stats = local.dispatcher.stats
    assert stats.invocations == 6 and stats.max_concurrent == 2 and stats.cold_starts == 2


def test_a_failing_function_is_retried_twice_then_recorded(local, tmp_path):
    deploy_and_wire(function_zip(tmp_path / "failing.zip", FAILING), "failing")
    local.client("s3").put_object(Bucket="photos", Key="incoming/a.png", Body=b"x")
    assert local.wait_idle(60)
    stats = local.dispatcher.stats
    assert [r.attempt for r in stats.records] == [0, 1, 2]
    assert all(r.error["errorType"] == "RuntimeError" for r in stats.records)
    assert len(stats.failures) == 1 and stats.failures[0]["attempts"] == 3
    assert unquote_plus(stats.failures[0]["event"]["Records"][0]["s3"]["object"]["key"]) == "incoming/a.png"


def test_a_retry_runs_what_the_alias_points_at_when_it_retries(cache_dir, tmp_path, monkeypatch):
    """As on Lambda, a retry runs the function the ARN names at the retry: here the failing
    code is fixed and deployed (the alias moved) between the first attempt and the retry."""
    with LocalAWS(cache_dir, concurrency=1, retry_delays=(5.0, 5.0)) as local:
        point_at(local, monkeypatch)
        s3 = local.client("s3")
        s3.create_bucket(Bucket="photos")
        deploy_and_wire(function_zip(tmp_path / "broken.zip", FAILING), "fixed")
        s3.put_object(Bucket="photos", Key="incoming/a.png", Body=b"x")
        deadline = time.monotonic() + 60
        while not local.dispatcher.stats.errors and time.monotonic() < deadline:
            time.sleep(0.05)
        fixed = function_zip(tmp_path / "fixed.zip", SLOW)
        deploy(
            DeploySettings(fixed, "fixed", bucket="photos", prefix="incoming/"), AWSClient(), log=lambda _: 0
        )
        assert local.dispatcher.stats.retries == 1 and len(local.dispatcher.stats.records) == 1  # not yet run
        assert local.wait_idle(60)
        records = local.dispatcher.stats.records
        assert [(r.attempt, r.ok) for r in records] == [(0, False), (1, True)]
        assert s3.get_object(Bucket="photos", Key="results/timing/incoming/a.png")["Body"].read()


CHAIN = """
import boto3
from urllib.parse import unquote_plus
s3 = boto3.client("s3")
def handler(event, context):
    key = unquote_plus(event["Records"][0]["s3"]["object"]["key"])
    s3.put_object(Bucket="photos", Key="chained/" + key.split("/")[-1], Body=b"next")
    return {"ok": True}
"""


def test_wait_idle_waits_for_what_a_functions_own_writes_start(local, tmp_path):
    """A writes under another wired prefix, which invokes B: after one upload, wait_idle
    returns only when both ran (B's notice may still be in moto's pipe when A is done)."""
    deploy_and_wire(function_zip(tmp_path / "a.zip", CHAIN), "first")
    chained = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::photos/chained/*"}
    local.client("iam").put_role_policy(  # beyond what deploy grants: IAM is enforced
        RoleName=role_name("first"),
        PolicyName="chain",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [chained]}),
    )
    deploy_and_wire(function_zip(tmp_path / "b.zip", SLOW), "second", prefix="chained/")
    local.client("s3").put_object(Bucket="photos", Key="incoming/1.png", Body=b"x")
    assert local.wait_idle(60)
    assert sorted(r.function for r in local.dispatcher.stats.records) == ["first", "second"]
    assert all(r.ok for r in local.dispatcher.stats.records)


def test_an_upload_to_a_bucket_wired_to_a_deleted_function_succeeds_and_is_recorded(local, tmp_path):
    """moto's own S3 never fails an upload over its notification; neither does the local
    AWS: the invocation is recorded as given up, naming why."""
    deploy_and_wire(function_zip(tmp_path / "f.zip", FAILING), "gone")
    local.client("lambda").delete_function(FunctionName="gone")
    local.client("s3").put_object(Bucket="photos", Key="incoming/1.png", Body=b"x")
    assert local.wait_idle(60)
    (failure,) = local.dispatcher.stats.failures
    assert failure["function"] == "gone" and "gone" in failure["error"]["errorMessage"]
    assert not local.dispatcher.stats.records


def test_a_deleted_functions_warm_environments_end(local, tmp_path):
    """destroy (DeleteFunction) ends the function's warm execution environments at once,
    instead of leaving their processes or containers until the endpoint stops."""
    deploy_and_wire(function_zip(tmp_path / "gone.zip", SLOW), "gone")
    local.client("s3").put_object(Bucket="photos", Key="incoming/1.png", Body=b"x")
    assert local.wait_idle(60)
    (warm,) = local.dispatcher.sandboxes()
    assert warm.alive()
    local.client("lambda").delete_function(FunctionName="gone")
    deadline = time.monotonic() + 30
    while warm.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not warm.alive()


def test_an_updated_function_runs_its_new_code_from_a_cold_start(local, tmp_path):
    deploy_and_wire(function_zip(tmp_path / "v1.zip", SLOW), "changing")
    s3 = local.client("s3")
    s3.put_object(Bucket="photos", Key="incoming/1.png", Body=b"x")
    assert local.wait_idle(60)
    deploy(
        DeploySettings(
            function_zip(tmp_path / "v2.zip", FAILING), "changing", bucket="photos", prefix="incoming/"
        ),
        AWSClient(),
        log=lambda _: None,
    )
    s3.put_object(Bucket="photos", Key="incoming/2.png", Body=b"x")
    assert local.wait_idle(60)
    records = local.dispatcher.stats.records
    assert records[0].ok and records[1].cold and records[1].error["errorType"] == "RuntimeError"


TMP_MARKER = """
import json, os, tempfile, boto3
from urllib.parse import unquote_plus
s3 = boto3.client("s3")
def handler(event, context):
    record = event["Records"][0]
    marker = os.path.join(tempfile.gettempdir(), "marker")  # /tmp (TMPDIR on this machine's Python)
    found = os.path.exists(marker)
    open(marker, "w").close()
    key = "results/tmp/" + unquote_plus(record["s3"]["object"]["key"])  # where its role may write
    s3.put_object(Bucket=record["s3"]["bucket"]["name"], Key=key, Body=json.dumps({"found": found}))
"""


def test_a_new_ephemeral_storage_size_alone_gets_a_fresh_tmp(local, tmp_path):
    """A deploy that changes only --ephemeral-storage: on Lambda the next invocation is a
    new execution environment with the new /tmp, so the old /tmp's files are gone."""
    zip_path = function_zip(tmp_path / "tmp.zip", TMP_MARKER)
    s3 = local.client("s3")

    def found(key: str) -> bool:
        s3.put_object(Bucket="photos", Key=f"incoming/{key}", Body=b"x")
        assert local.wait_idle(60)
        return json.loads(s3.get_object(Bucket="photos", Key=f"results/tmp/incoming/{key}")["Body"].read())[
            "found"
        ]

    deploy_and_wire(zip_path, "scratch")
    assert not found("1.png") and found("2.png")  # the warm environment keeps its /tmp
    settings = DeploySettings(
        zip_path, "scratch", bucket="photos", prefix="incoming/", ephemeral_storage=1024
    )
    deploy(settings, AWSClient(), log=lambda _: None)
    assert local.client("lambda").get_function_configuration(FunctionName="scratch")["EphemeralStorage"] == {
        "Size": 1024
    }
    assert not found("3.png")
    records = local.dispatcher.stats.records
    assert [r.cold for r in records] == [True, False, True] and all(r.ok for r in records)
    (current,) = [s for s in local.dispatcher.sandboxes() if s.alive()]
    assert current.spec.ephemeral_mb == 1024


def test_each_invocation_is_one_line_and_its_logs_are_read_back_like_lambdas(
    cache_dir, packed, tmp_path, monkeypatch
):
    import subprocess
    import sys

    lines: list[str] = []
    with LocalAWS(cache_dir, concurrency=1, retry_delays=(0.1,), log=lines.append) as local:
        point_at(local, monkeypatch)
        local.client("s3").create_bucket(Bucket="photos")
        out, _, _ = packed
        deploy_and_wire(shutil.copy(out / "function.zip", tmp_path / "function.zip"), "digits")
        body = (SAMPLE / "heldout" / "digit-0021.png").read_bytes()
        local.client("s3").put_object(Bucket="photos", Key="incoming/seven.png", Body=body)
        assert local.wait_idle(120)  # the invocations, and their log lines written
        proc = subprocess.run(
            [sys.executable, "-m", "lambdapack", "logs", "digits", "--since", "600"],
            capture_output=True,
            text=True,
            env=os.environ,
        )
    (line,) = [line for line in lines if line.startswith("digits:")]
    assert "incoming/seven.png -> 1 " in line and "cold start" in line
    assert proc.returncode == 0, proc.stderr
    assert "START RequestId:" in proc.stdout and "REPORT RequestId:" in proc.stdout
    assert '"key": "incoming/seven.png"' in proc.stdout and '"outcome": "ok"' in proc.stdout
