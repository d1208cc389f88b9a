"""Every image accounted for, at scale, through the local AWS.

Deploys the sample zip (python3.11: this machine's Python, the fast path) behind an S3
trigger with an SQS on-failure destination (``MaximumRetryAttempts`` 1), wrapped in a
tiny handler that makes a deterministic share of the images fail: names starting with
``timeout-`` sleep past the function's timeout (1 s), ``oom-`` allocate past its memory
(256 MB), ``crash-`` exit the runtime; the rest go to the packed handler. Half-way
through, one execution environment is killed from outside (SIGKILL of its process).

Prints images/s (first upload to the last invocation done) and time to drain (last
upload to idle); then ``lambdapack status`` of the prefix (classified + errors + failed =
images, pending 0, each failure's reason the one it was made to fail with); then deploys
the fix (the packed zip without the wrapper, 1,024 MB, 10 s), runs ``lambdapack redrive``
and ``status`` again: failed 0, every image classified. Usage:
    python scripts/bench_accounting.py [--images 10000] [--share 0.002] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.aws.redrive import redrive
from lambdapack.aws.status import status
from lambdapack.aws.wire import WireSettings, wire
from lambdapack.handler.lambdapack_handler.contract import HANDLER_MODULE
from lambdapack.local.localaws import LocalAWS
from lambdapack.resources import default_cache_dir

WRAPPER = """
import os, time
from urllib.parse import unquote_plus
import bench_real_index

def handler(event, context):
    for record in event.get("Records", []):
        name = unquote_plus(record["s3"]["object"]["key"]).rsplit("/", 1)[-1]
        if name.startswith("timeout-"):
            time.sleep(3600)
        if name.startswith("oom-"):
            hoard = []
            while True:
                hoard.append(b"x" * (16 * 1024 * 1024))
        if name.startswith("crash-"):
            os._exit(1)
    return bench_real_index.handler(event, context)
"""
KINDS = ("timeout", "oom", "crash")


def wrapped_zip(original: Path, out: Path) -> Path:
    """The packed zip with its index.py kept as bench_real_index.py behind the wrapper."""
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename.startswith(f"__pycache__/{HANDLER_MODULE.removesuffix('.py')}."):
                continue  # its shipped bytecode (unchecked hash) would run instead of the wrapper
            data = source.read(item)
            if item.filename == HANDLER_MODULE:
                target.writestr("bench_real_index.py", data)
                target.writestr(HANDLER_MODULE, WRAPPER)
            else:
                target.writestr(item, data)
    return out


def image_keys(count: int, share: float) -> list[str]:
    every = max(1, round(1 / share)) if share else 0
    keys = []
    for number in range(count):
        kind = KINDS[(number // every) % len(KINDS)] if every and number % every == every - 1 else "img"
        keys.append(f"incoming/{kind}-{number:05d}.png")
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument(
        "--share", type=float, default=0.002, help="of the images made to fail (timeout, oom, crash in turn)"
    )
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--zip", type=Path, default=ROOT / "build" / "bench" / "dist-digits" / "function.zip")
    args = parser.parse_args()
    if not args.zip.exists():
        sys.exit(f"{args.zip} is missing: python scripts/bench_handler.py packs it (or pass --zip)")
    samples = sorted((ROOT / "build" / "sample" / "heldout").glob("*.png"))
    bodies = [path.read_bytes() for path in samples]
    keys = image_keys(args.images, args.share)
    work = Path(tempfile.mkdtemp(prefix="bench-accounting-"))
    zip_path = wrapped_zip(args.zip, work / "function.zip")

    with LocalAWS(default_cache_dir(), concurrency=args.concurrency, retry_delays=(0.2, 0.4)) as local:
        os.environ.update(local.client_environment())
        s3, sqs = local.client("s3"), local.client("sqs")
        s3.create_bucket(Bucket="photos")
        settings = DeploySettings(
            zip_path,
            "accounting",
            bucket="photos",
            prefix="incoming/",
            memory=256,
            timeout=1,
            env={"INFERENCE_THREADS": "1"},
        )
        deploy(settings, AWSClient(), log=lambda _: None)
        wire(WireSettings("accounting", "photos", prefix="incoming/"), AWSClient())
        url = sqs.create_queue(QueueName="lambdapack-accounting-failures")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        local.client("lambda").put_function_event_invoke_config(
            FunctionName="accounting",
            Qualifier="live",
            MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": arn}},
        )

        killed = threading.Event()

        def kill_one_environment_half_way() -> None:
            while len(local.dispatcher.stats.records) < args.images // 2:
                time.sleep(0.05)
            for box in local.dispatcher.sandboxes():
                if box.alive() and box.process is not None:
                    os.kill(box.process.pid, signal.SIGKILL)
                    killed.set()
                    return

        threading.Thread(target=kill_one_environment_half_way, daemon=True).start()
        began = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda n: s3.put_object(Bucket="photos", Key=keys[n], Body=bodies[n % len(bodies)]),
                    range(len(keys)),
                )
            )
        uploaded = time.perf_counter()
        if not local.wait_idle(3600):
            sys.exit("the local AWS did not drain in an hour")
        drained = time.perf_counter()

        aws = AWSClient()
        before = status(aws, "photos", "incoming/", "accounting", "live")
        stats = local.dispatcher.stats
        invocations, cold, retries = stats.invocations, stats.cold_starts, stats.retries
        # The fix: the packed handler alone, with room to run. Then the failed events again.
        fixed = DeploySettings(
            args.zip, "accounting", bucket="photos", prefix="incoming/", memory=1024, timeout=10
        )
        deploy(fixed, AWSClient(), log=lambda _: None)
        redrive_began = time.perf_counter()
        redriven = redrive(aws, "accounting", "live")
        if not local.wait_idle(3600):
            sys.exit("the redriven invocations did not drain in an hour")
        redrive_drained = time.perf_counter()
        after = status(aws, "photos", "incoming/", "accounting", "live")

    kind = lambda key: key.split("/")[1].split("-")[0]  # noqa: E731
    expected = {"timeout": "timeout", "oom": "out of memory", "crash": "crashed"}
    made_to_fail = {key for key in keys if kind(key) in expected}
    by_kind = collections.Counter(kind(key) for key in keys)
    print(
        f"images: {args.images} ({', '.join(f'{k} {v}' for k, v in sorted(by_kind.items()))}), "
        f"concurrency {args.concurrency}"
    )
    print(f"uploaded in {uploaded - began:.1f} s; drained {drained - uploaded:.1f} s after the last upload")
    print(f"throughput: {args.images / (drained - began):.1f} images/s from first upload to idle")
    print(f"invocations: {invocations} ({cold} cold), retries {retries}")
    print(f"one environment killed from outside mid-run: {'yes' if killed.is_set() else 'no (none alive)'}")
    for label, report in (("status after the run", before), ("status after the fix and redrive", after)):
        reasons = collections.Counter(why.split(" (")[0] for why in report.reasons.values())
        print(
            f"{label}: {report.inputs} inputs — {report.count('classified')} classified, "
            f"{report.count('errors')} errors, {report.count('failed')} failed"
            + (f" ({', '.join(f'{why} {n}' for why, n in sorted(reasons.items()))})" if reasons else "")
            + f", {report.count('pending')} pending, {report.count('not_triggered')} not triggered"
        )
    accounted = sum(before.count(state) for state in ("classified", "errors", "failed"))
    print(f"accounted after the run: {accounted} of {args.images} (classified + errors + failed)")
    wrong = [key for key, why in before.reasons.items() if expected.get(kind(key), "") not in why]
    print(
        f"every image made to fail is failed: {made_to_fail <= set(before.keys['failed'])}; "
        f"failures whose reason is not the one made: {len(wrong)} {sorted(wrong)[:5]}"
    )
    print(
        f"redrive: {redriven.invoked} failed events invoked again; drained in "
        f"{redrive_drained - redrive_began:.1f} s"
    )


if __name__ == "__main__":
    main()
