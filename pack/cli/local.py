"""``lambdapack invoke``, ``local``, ``upload`` and ``results``: parse, call
``lambdapack.local``, render.

``lambdapack.local`` (and so boto3) is imported only when one of these runs: the
Docker builder runs ``lambdapack pack`` in an environment without boto3."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from pathlib import Path

import click

from ..errors import InputError, PackError, ResultsMissing
from ..limits import DEFAULT_REGION
from ..render import answer_line, confusion_table, echo, progress_bar, results_table, say, score_lines
from ..resources import default_cache_dir
from .common import aws_options, console, env_pairs, err, function_options, session


@click.command("invoke")
@click.argument("zip_path", metavar="ZIP", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument(
    "paths", metavar="[IMAGE|FOLDER|CSV]...", nargs=-1, type=click.Path(exists=True, path_type=Path)
)
@click.option(
    "--image",
    "images",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An image file to classify (repeatable): no S3 of yours is needed.",
)
@click.option(
    "--event",
    "event_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON event file.",
)
@click.option("--bucket", help="Build an S3 event for this bucket …")
@click.option("--key", "keys", multiple=True, help="… and this key (repeatable).")
@function_options
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="A function environment variable.")
def invoke_command(zip_path, paths, images, event_file, bucket, keys, timeout, memory, env) -> None:
    """Run ZIP in the local Lambda runtime (AWS's runtime interface client), in its target's
    own Python (a container when this machine's is another).

    With images or folders, print one line per image: file → label score, or file → error;
    a folder with one subfolder per class is labelled (the subfolder names are the labels),
    and so is a .csv of file,label rows (paths relative to the CSV): each line then ends with
    ✓ or ✗ true: LABEL, and the accuracy follows on stderr. Exits 1 when any image got an
    error. With --image,
    print the result object the function writes for each file, one JSON object a line with
    the file's path added as "file". Otherwise print the function's response."""
    from ..local.invoke import InvokeOptions, ZipFunction, classify_files, passed_environment
    from ..local.s3event import s3_event

    options = InvokeOptions(
        cache_dir=default_cache_dir(),
        timeout=timeout,
        memory=memory,
        environment=env_pairs(env),
        passed=passed_environment(),
        region=os.environ.get("AWS_REGION", DEFAULT_REGION),
    )
    if paths and (images or event_file or bucket or keys):
        raise click.UsageError("pass images or folders, or one of --image, --event, --bucket/--key: not both")
    if paths:
        files, truth = _images_with_labels(paths)
        objects, results = classify_files(zip_path, files, options)
        _report_invocations(results, options.memory)
        for path, body in zip(files, objects, strict=True):
            echo(answer_line(str(path), body, truth.get(path)))
        if truth:
            _score_labelled(files, objects, truth)
        _fail_on_errors(objects)
        return
    if images:
        objects, results = classify_files(zip_path, list(images), options)
        _report_invocations(results, options.memory, exit_on_error=True)
        for path, body in zip(images, objects, strict=True):
            echo(json.dumps({"file": str(path), **body}, sort_keys=True))
        _fail_on_errors(objects)
        return
    if event_file:
        try:
            event = json.loads(event_file.read_text())
        except ValueError as exc:
            raise InputError(f"{event_file} is not a JSON event: {exc}") from exc
    elif bucket and keys:
        event = s3_event(bucket, list(keys))
    else:
        raise click.UsageError("pass images or a folder, --image FILE, --event FILE, or --bucket B --key K")
    with ZipFunction(zip_path, options) as function:
        result = function.invoke(event)
    _report_invocation(result, options.memory)
    echo((result.payload or b"null").decode(errors="replace"))


def _images_with_labels(paths: tuple[Path, ...]) -> tuple[list[Path], dict[Path, str]]:
    """The images named on the command line, in order, each once: a file as it is, a folder's
    or a .csv's samples (``labelled.read_samples``: a flat folder's images, class folders whose
    names are the images' labels, or file,label rows); and the label of each image that has one."""
    from ..labelled import read_samples

    files: list[Path] = []
    truth: dict[Path, str] = {}
    for path in paths:
        if not path.is_dir() and path.suffix.lower() != ".csv":
            files.append(path)
            continue
        for sample in read_samples(path).samples:
            files.append(sample.path)
            if sample.label is not None:
                truth[sample.path] = sample.label
    return list(dict.fromkeys(files)), truth


def _score_labelled(files: list[Path], objects: list[dict], truth: dict[Path, str]) -> None:
    """The top-1 accuracy of the images that have a label, on stderr (stdout stays one line an image)."""
    from ..scoring import answer_from_result, score

    answers = [
        answer_from_result(str(path), truth[path], body)
        for path, body in zip(files, objects, strict=True)
        if path in truth
    ]
    for figure in score_lines(score(answers)):
        err.print(figure, highlight=False, soft_wrap=True)


def _report_invocations(results, memory: int, exit_on_error: bool = False) -> None:
    """Each invocation's log and REPORT line on stderr; a failed one is named (its images got
    an error each), or exits 1 with ``exit_on_error``."""
    for result in results:
        if exit_on_error:
            _report_invocation(result, memory)
            continue
        if result.logs:
            echo(result.logs.rstrip(), err=True)
        echo(result.report_line(memory), err=True)
        if not result.ok:
            echo(json.dumps(result.error), err=True)


def _fail_on_errors(objects: list[dict]) -> None:
    """Exit 1 (one line) when any image got an error result instead of an answer."""
    failed = sum(1 for body in objects if body.get("error"))
    if failed:
        raise PackError(
            f"{failed} of {len(objects)} images got an error instead of an answer",
            "Each one's line says why (not an image, too large, the invocation failed).",
        )


def _report_invocation(result, memory: int) -> None:
    """The function's log and Lambda's REPORT line on stderr; a failed invocation exits 1."""
    if result.logs:
        echo(result.logs.rstrip(), err=True)
    echo(result.report_line(memory), err=True)
    if not result.ok:
        echo(json.dumps(result.error, indent=2))
        raise SystemExit(1)


@click.command("local")
@click.option(
    "--port", type=int, default=4566, show_default=True, help="Port on 127.0.0.1 (0: any free one)."
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Invocations at once, 1 or more (default: the number of cores).",
)
@click.option("--bucket", "buckets", multiple=True, help="A bucket to create at start (repeatable).")
@click.option(
    "--retry-delay",
    "retry_delays",
    multiple=True,
    type=click.FloatRange(min=0),
    default=(1.0, 2.0),
    show_default=True,
    metavar="SECONDS",
    help="Wait before each retry of a failed invocation (repeatable: first, second). "
    "Lambda waits about 1 and 2 minutes; shortened here.",
)
@click.option("--verbose", is_flag=True, help="Also print the local endpoint's HTTP access log.")
def local_command(port, concurrency, buckets, retry_delays, verbose) -> None:
    """Serve a local AWS (S3, Lambda, IAM, CloudWatch Logs, SQS, SNS, STS) on 127.0.0.1 that
    runs deployed functions.

    Objects created in a wired bucket invoke the deployed function's code in the
    local Lambda runtime, filtered by the bucket's notification configuration; failed
    invocations are retried and recorded in the function's on-failure destination as
    Lambda does. SIGTERM or Ctrl-C stops: invocations still queued, waiting for a retry
    or running are recorded as failed (EndpointStopped), never dropped.
    """
    from ..aws import names
    from ..local.leftovers import remove_leftovers
    from ..local.localaws import LocalAWS

    for bucket in buckets:
        if problem := names.bucket_problem(bucket):
            raise click.BadParameter(problem, param_hint="--bucket")
    if port:
        with socket.socket() as probe:
            # As the server binds: a port left in TIME-WAIT by the last run is free to use.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise click.BadParameter(
                    f"127.0.0.1:{port} is not free ({exc.strerror}); pass another "
                    "--port, or --port 0 for any free one",
                    param_hint="--port",
                ) from exc
    out = console()
    if removed := remove_leftovers():
        say(out, f"removed what a killed lambdapack local left: {removed}")
    stop = threading.Event()
    # Both end the loop below; a second one while stopping does not cut the stop short.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with LocalAWS(
        default_cache_dir(),
        port=port,
        concurrency=concurrency,
        retry_delays=tuple(retry_delays),
        # One line an invocation, never wrapped: a key must stay whole for whoever reads the output.
        log=lambda message: say(out, message, soft_wrap=True),
        verbose=verbose,
    ) as local:
        for bucket in buckets:
            local.client("s3").create_bucket(Bucket=bucket)
            say(out, f"created bucket {bucket}")
        say(out, f"local AWS endpoint: {local.endpoint} — in another shell:")
        for key, value in local.client_environment().items():
            say(out, f"  export {key}={value}")
        say(
            out,
            "then lambdapack deploy / wire / upload work against it (IAM is enforced: other keys "
            "are refused; the keys are new at each start). Ctrl-C stops.",
        )
        while not stop.wait(0.5):
            pass
        say(out, "stopping: no new invocations; what is left is recorded as failed (EndpointStopped)")
    # After the endpoint stopped: every failure was printed (with its keys) when it was recorded.
    stats = local.dispatcher.stats
    stopped = stats.stopped
    say(
        out,
        f"at stop: {stopped.get('queued', 0)} queued, {stopped.get('retrying', 0)} waiting for a retry, "
        f"{stopped.get('running', 0)} running — each recorded as failed",
    )
    delivered = sum(1 for failure in stats.failures if failure["delivered"])
    say(
        out,
        f"{stats.invocations} invocations, {stats.cold_starts} cold starts, {stats.errors} errors, "
        f"{len(stats.failures)} failed: {delivered} recorded in their on-failure destination, "
        f"{len(stats.failures) - delivered} with none (dropped, as Lambda drops them)",
    )


@click.command("upload")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("destination", metavar="s3://BUCKET/PREFIX/")
@aws_options
def upload_command(folder, destination, profile, region) -> None:
    """Upload the images in FOLDER to s3://BUCKET/PREFIX/, with a progress bar."""
    from ..aws.objects import require_bucket, upload_folder
    from ..images import image_files, other_files
    from ..s3url import parse_s3_url

    bucket, prefix = parse_s3_url(destination)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = session(profile, region).client("s3")
    files = image_files(folder)  # what is wrong with the folder or the bucket shows before the bar
    require_bucket(client, bucket)
    with progress_bar() as progress:
        task = progress.add_task(f"uploading to s3://{bucket}/{prefix}", total=len(files))
        keys = upload_folder(folder, bucket, prefix, client, advance=lambda: progress.advance(task))
    echo(f"uploaded {len(keys)} images to s3://{bucket}/{prefix}")
    if (warning := _untriggered_warning(session(profile, region), bucket, prefix)) is not None:
        say(err, ("warning: ", "yellow"), warning)
    if skipped := other_files(folder):
        names = ", ".join(p.relative_to(folder).as_posix() for p in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        echo(f"skipped {len(skipped)} files that are not images by their name, or hidden: {names}{more}")


def _untriggered_warning(aws_session, bucket: str, prefix: str) -> str | None:
    """One line when no Lambda trigger on the bucket covers ``prefix`` (nothing will run for
    these images), naming the prefixes that are wired; None when one does, or when the
    bucket's notifications cannot be read (the upload itself went fine)."""
    from ..aws.client import AWSClient
    from ..aws.inventory import covers_prefix, triggers_of
    from ..errors import AWSError

    try:
        triggers = triggers_of(AWSClient(aws_session), bucket)
    except AWSError:
        return None
    if any(covers_prefix(trigger, prefix) for trigger in triggers):
        return None
    wired = ", ".join(f"{t.prefix or '(every key)'!s} -> {t.target.split(':', 6)[-1]}" for t in triggers)
    return (
        f"no trigger on s3://{bucket} covers {prefix or '(the bucket root)'}: nothing will classify these "
        f"images (wired: {wired or 'no Lambda trigger at all'}); run lambdapack backfill "
        f"s3://{bucket}/{prefix} --function NAME, or upload under a wired prefix"
    )


@click.command("results")
@click.argument("location", metavar="s3://BUCKET/PREFIX/")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write a CSV.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds to wait until every image under --inputs has its result (exit 12 if some never come).",
)
@click.option(
    "--inputs",
    metavar="s3://BUCKET/PREFIX/",
    help="Where the images were uploaded: says how many have no result yet (what --wait waits for).",
)
@click.option(
    "--labels-from",
    type=click.Choice(("folder",)),
    help="folder: each input key's folder is its true label (incoming/cat/1.png is a cat): also "
    "print the accuracy and the confusion matrix.",
)
@aws_options
def results_command(location, csv_path, wait, inputs, labels_from, profile, region) -> None:
    """Collect the result objects under s3://BUCKET/PREFIX/ into a table (and CSV)."""
    from ..aws.objects import read_result_rows, wait_for_results
    from ..csvfile import write_csv
    from ..s3url import parse_s3_url

    bucket, prefix = parse_s3_url(location)
    client = session(profile, region).client("s3")
    missing: list[str] = []
    if wait is not None and not inputs:
        raise click.UsageError("--wait needs --inputs s3://BUCKET/PREFIX/ (where the images were uploaded)")
    counted = {"total": 0}

    def seen(done: int, total: int, update=lambda done, total: None) -> None:
        counted["total"] = total
        update(done, total)

    if wait is not None:
        with progress_bar() as progress:
            task = progress.add_task("waiting for results", total=None)
            missing = wait_for_results(
                client,
                parse_s3_url(inputs),
                (bucket, prefix),
                wait,
                progress=lambda done, total: seen(
                    done, total, lambda d, t: progress.update(task, completed=d, total=t)
                ),
            )
    elif inputs:
        missing = wait_for_results(client, parse_s3_url(inputs), (bucket, prefix), 0, progress=seen)
    rows, foreign = read_result_rows(bucket, prefix, client)
    out = console()
    out.print(results_table(rows))
    errors = sum(1 for r in rows if r["error"])
    say(out, f"{len(rows) - errors} classified, {errors} errors")
    if inputs:
        say(out, f"{len(missing)} of {counted['total']} inputs under {inputs} have no result yet")
    if foreign:
        say(out, f"skipped {foreign} objects under {location} that are not lambdapack results")
    if csv_path:
        write_csv(rows, csv_path)
        say(out, f"wrote {csv_path}")
    if labels_from:
        _score_by_folder(out, rows, parse_s3_url(inputs)[1] if inputs else "")
    if missing and wait is not None:
        shown = ", ".join(missing[:5]) + (f" … and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ResultsMissing(
            f"{len(missing)} images have no result after {wait:g} s: {shown}",
            "The function may still be running, or failed on them: lambdapack status LOCATION --function "
            "NAME tells which (pending, failed, or not triggered); or wait longer.",
        )


def _score_by_folder(out, rows: list[dict], under: str) -> None:
    """Accuracy and the confusion matrix of the results whose input key has a folder (its
    label); the others are counted and named."""
    from ..scoring import Answer, folder_labels, score

    answers, unlabelled = [], []
    labels = folder_labels([row["input"] for row in rows], under)
    for row in rows:
        truth = labels[row["input"]]
        if truth is None:
            unlabelled.append(row["input"])
        elif row["error"]:
            answers.append(Answer(row["input"], truth, error=row["error"]))
        else:
            answers.append(Answer(row["input"], truth, (row["label"],), row["score"] or None))
    if unlabelled:
        shown = ", ".join(unlabelled[:3]) + (
            f" … and {len(unlabelled) - 3} more" if len(unlabelled) > 3 else ""
        )
        say(
            out,
            ("warning: ", "yellow"),
            f"{len(unlabelled)} inputs are in no folder of their own, not scored: {shown}",
        )
    if not answers:
        say(out, "no input key has a folder to take its label from: nothing to score")
        return
    scored = score(answers)
    for figure in score_lines(scored):
        out.print(figure, highlight=False)
    out.print(confusion_table(scored))


COMMANDS = (invoke_command, local_command, upload_command, results_command)
