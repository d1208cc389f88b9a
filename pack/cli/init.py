"""``lambdapack init``: parse, call ``lambdapack.packing.model.init_config``, print."""

from __future__ import annotations

from pathlib import Path

import click

from lambdapack.handler.lambdapack_handler.config import RESIZE_MODES, SCALES

from ..errors import InputError
from ..packing.model import init_config, parse_labels, parse_size, read_labels_file
from ..render import echo, say
from .common import ALLOW_UNSAFE_OPS_HELP, err


@click.command("init")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--labels", help="Class names in output order, separated by commas: cat,dog,bird.")
@click.option(
    "--labels-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of class names, one a line, in output order.",
)
@click.option(
    "--size",
    metavar="HxW",
    help="Image size for a model whose input takes any size and that does not resize inside (e.g. 224x224).",
)
@click.option(
    "--samples",
    type=click.Path(exists=True, path_type=Path),
    help="Labelled sample images: a folder with one subfolder of images per class (the sorted "
    "folder names are the labels, as Keras's image_dataset_from_directory numbers them), or a CSV "
    "of file,label rows. The model is run under every input scale and resize, and the most "
    "accurate is written.",
)
@click.option(
    "--scale",
    type=click.Choice(tuple(SCALES)),
    help="The pixel range the model expects (instead of measuring or reading it).",
)
@click.option(
    "--resize",
    type=click.Choice(RESIZE_MODES),
    help="How images are brought to the input size (instead of measuring or reading it).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing config.")
@click.option("--allow-unsafe-ops", is_flag=True, help=ALLOW_UNSAFE_OPS_HELP)
def init_command(
    model: Path,
    labels: str | None,
    labels_file: Path | None,
    size: str | None,
    samples: Path | None,
    scale: str | None,
    resize: str | None,
    force: bool,
    allow_unsafe_ops: bool,
) -> None:
    """Inspect MODEL (.keras, .h5, a SavedModel folder or .tflite) and write its config
    beside it (MODEL_STEM.lambdapack.json): input size, scaling, resize, output kind, labels.
    With labelled --samples, the labels are the class folders' names and the scale and resize
    are the candidates that get the most samples right (the table is printed).
    Prints each value and where it came from."""
    if labels is not None and labels_file is not None:
        raise InputError("pass --labels or --labels-file, not both")
    names, labels_from = None, "--labels"
    if labels is not None:
        names = parse_labels(labels)
    elif labels_file is not None:
        names, labels_from = read_labels_file(labels_file), f"--labels-file {labels_file}"
    result = init_config(
        model,
        names,
        labels_from,
        parse_size(size) if size else None,
        force,
        allow_unsafe_ops,
        samples=samples,
        scale=scale,
        resize=resize,
    )
    for row in result.table:
        echo(f"  {row}")
    echo(f"{'replaced' if result.replaced else 'wrote'} {result.path}")
    for name, value, source in result.fields:
        echo(f"  {name:<8} {value} ({source})")
    for note in result.notes:
        echo(f"  note: {note}")
    for warning in result.warnings:
        say(err, ("warning: ", "yellow"), warning)


COMMANDS = (init_command,)
