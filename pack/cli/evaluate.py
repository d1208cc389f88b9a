"""``lambdapack evaluate``: parse, call ``lambdapack.local.evaluate``, render.

``lambdapack.local`` (and so boto3) is imported only when it runs."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..pages import evaluate_page, write_page
from ..render import class_table, confusion_table, say, score_lines, wrong_table
from ..resources import default_cache_dir
from ..scoring import percent
from .common import console, err, function_options


@click.command("evaluate")
@click.argument("zip_path", metavar="ZIP", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("where", metavar="DIR", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML page with the confusion matrix.",
)
@click.option(
    "--model",
    type=click.Path(exists=True, path_type=Path),
    help="The original model (.keras, .h5, SavedModel folder or .tflite): also run it on the same "
    "images (TensorFlow, on this machine) and say how often the zip agrees with it.",
)
@function_options
def evaluate_command(zip_path, where, as_json, html_path, model, timeout, memory) -> None:
    """Classify labelled images with ZIP in its target's local runtime and score the answers:
    top-1 (and top-k) accuracy, per-class precision and recall, the confusion matrix and the
    images it got wrong.

    DIR holds one subfolder per class, the subfolder names being the labels (the layout of
    Keras's image_dataset_from_directory and torchvision's ImageFolder), or is a CSV file
    of file,label rows (a file,label header optional; file paths relative to the CSV)."""
    from ..labelled import read_samples
    from ..local.evaluate import evaluate
    from ..local.invoke import InvokeOptions, passed_environment

    samples = read_samples(where)
    options = InvokeOptions(
        cache_dir=default_cache_dir(),
        timeout=timeout,
        memory=memory,
        passed=passed_environment(),
        region=os.environ.get("AWS_REGION", InvokeOptions.region),  # invoke's default Region
    )
    evaluation = evaluate(zip_path, samples, options, model)
    result = evaluation.as_dict()
    if html_path is not None:
        write_page(html_path, evaluate_page(result))
        say(err, f"wrote {html_path}")
    for problem in evaluation.invocation_errors:
        say(err, ("warning: ", "yellow"), f"an invocation failed, its images count as errors: {problem}")
    if evaluation.unknown_labels:
        say(
            err,
            ("warning: ", "yellow"),
            f"labels of {where} the model never gives: {', '.join(evaluation.unknown_labels)} "
            "(its labels are in the zip's model/config.json)",
        )
    if as_json:
        click.echo(evaluation.to_json(), nl=False)
        return
    out = console()
    scored = evaluation.score
    say(
        out,
        f"{zip_path.name} on {scored.images} labelled images of {where} ({evaluation.runtime}, "
        f"labels from {'class folders' if evaluation.layout == 'folders' else evaluation.layout}, "
        f"{evaluation.seconds:.1f} s)",
    )
    for figure in score_lines(scored):
        out.print(figure, highlight=False)
    if evaluation.original is not None:
        original = evaluation.original
        say(
            out,
            f"original model {Path(original['path']).name}: top-1 {original['correct']}/{scored.images} = "
            f"{percent(original['top1'])}; the zip agrees on {percent(original['agreement'])} of the images "
            f"({len(original['disagreements'])} differ)",
        )
    out.print(class_table(scored))
    out.print(confusion_table(scored))
    if scored.wrong:
        out.print(wrong_table(scored))


COMMANDS = (evaluate_command,)
