"""The Docker builder: the same pack pipeline, run inside an image of the target OS.

For users on macOS or Windows, and for targets whose Python this machine does
not have. The model is converted and checked here first (TensorFlow stays on
the host); then an image is built from ``Dockerfile.amazonlinux`` (tagged by
a hash of the Dockerfile, ``build.sh`` and the base image, so a second run is
a cache hit), and a container runs ``build.sh`` — which runs ``lambdapack
pack`` from this installed lambdapack package, mounted read-only at
``/src/lambdapack``, with the image's interpreter — with the output folder
mounted at ``/outputs``. Both files ship inside the package (``resources``).
Its log is streamed; the container is removed even when the build fails.
Everything goes through the docker SDK.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, PackError, ToolError
from ..resources import BUILD_SCRIPT, DOCKERFILE, builder_file, package_dir
from .interpreter import OFFICIAL_IMAGES
from .model import prepare_model, require_labels, sample_set
from .pipeline import PackOptions
from .report import Report

IMAGE_REPOSITORY = "lambdapack-builder"

HOST_NETWORK_MOUNTS = ("/etc/resolv.conf", "/etc/ssl/certs")


@dataclass
class DockerOptions:
    base_image: str | None = None
    # Containers reach the package index only through the host's network, resolver
    # and CA certificates on some machines (CI here): opt in with --docker-host-network.
    host_network: bool = False


def image_tag(base_image: str) -> str:
    digest = hashlib.sha256()
    for name in (DOCKERFILE, BUILD_SCRIPT):
        digest.update(builder_file(name).read_bytes())
    digest.update(base_image.encode())
    return f"{IMAGE_REPOSITORY}:{digest.hexdigest()[:16]}"


def docker_client():
    try:
        import docker
    except ImportError as exc:
        raise ToolError("the Docker builder needs the docker SDK", 'pip install "docker>=7"') from exc
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise ToolError(
            f"no Docker engine answers ({_first_line(exc)})",
            "Start Docker (Docker Desktop, `sudo systemctl start docker`, or `dockerd &`), or check "
            "DOCKER_HOST; or pack with --builder native.",
        ) from exc
    return client


def ensure_image(client, base_image: str, log: Callable[[str], None], host_network: bool = False) -> str:
    import docker

    tag = image_tag(base_image)
    try:
        client.images.get(tag)
        log(f"builder image {tag} (cached)")
        return tag
    except docker.errors.ImageNotFound:
        pass
    log(f"building {tag} from {DOCKERFILE} on {base_image}")
    context = Path(tempfile.mkdtemp(prefix="lambdapack-docker-"))
    try:
        for name in (DOCKERFILE, BUILD_SCRIPT):
            shutil.copy2(builder_file(name), context / name)
        (context / BUILD_SCRIPT).chmod(0o755)  # the image's entry point
        try:
            for chunk in client.api.build(
                path=str(context),
                dockerfile=DOCKERFILE,
                tag=tag,
                decode=True,
                buildargs={"BASE_IMAGE": base_image},
                rm=True,
                forcerm=True,
                network_mode="host" if host_network else None,
                pull=False,
            ):
                if "stream" in chunk and chunk["stream"].strip():
                    log(chunk["stream"].rstrip())
                if "error" in chunk:
                    raise _build_error(chunk["error"], base_image)
        except docker.errors.APIError as exc:
            raise _build_error(str(exc), base_image) from exc
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return tag


def _build_error(message: str, base_image: str) -> PackError:
    lowered = message.lower()
    if any(
        word in lowered
        for word in (
            "pull access denied",
            "not found",
            "manifest unknown",
            "no such host",
            "repository does not exist",
            "failed to resolve",
            "dial tcp",
        )
    ):
        return ToolError(
            f"the base image {base_image} is not on this machine and cannot be pulled ({message.strip()})",
            "Pull it where a registry is reachable (docker pull), load or import it (docker load / docker "
            "import), or pass --base-image with an image you have.",
        )
    return ToolError(f"building the builder image failed: {message.strip()}")


# How each field of PackOptions reaches the container's ``lambdapack pack`` (every field is in
# exactly one of these; tests/test_docker_options.py checks it, so a new field cannot be forgotten).
FORWARDED = frozenset(
    {
        "target",
        "runtime",
        "requirements",
        "bundle_boto3",
        "keep",
        "refresh",
        "smoke",
        "stage_deps",
        "deps_level",
        "max_accuracy_drop",
    }
)
MOUNTED = frozenset({"out", "cache_dir", "samples", "handler_dir"})  # a folder, bound into the container
# The host converts and checks the model (prepare_model); the container gets the result at /model.
# (--labels: written into the prepared config.json.)
PREPARED_ON_HOST = frozenset({"model", "quantize", "config", "prepared_model", "allow_unsafe_ops", "labels"})
SAME_IN_CONTAINER = frozenset({"today"})  # the container's clock is the host's
REFUSED = {
    "find_links": "--find-links folders are not mounted into the build container: use --builder native",
    "image": "--image is for --builder native: the Docker builder compiles and smoke-tests in its own "
    "container (choose it with --base-image)",
}


def refusal(options: PackOptions) -> str | None:
    """Why the Docker builder cannot honour ``options`` (one line), or None."""
    defaults = PackOptions(options.model, options.out, options.target, options.runtime)
    for name, why in REFUSED.items():
        if getattr(options, name) != getattr(defaults, name):
            return why
    return None


def container_args(options: PackOptions) -> list[str]:
    """The ``lambdapack pack`` argv the container runs for ``options`` (FORWARDED fields, and
    the MOUNTED folders at their mount points)."""
    args = [
        "/model",
        "--prepared-model",
        "/model",
        "--out",
        "/outputs",
        "--cache-dir",
        "/cache",
        "--handler-dir",
        "/handler",
        "--python",
        options.target.python,
        "--arch",
        options.target.arch,
        "--runtime",
        options.runtime.name,
        "--stage-deps",
        options.stage_deps,
        "--deps-level",
        str(options.deps_level),
    ]
    for requirement in options.requirements:
        args += ["--require", requirement]
    for group in options.keep:
        args += ["--keep", group]
    args += ["--bundle-boto3"] * options.bundle_boto3 + ["--refresh"] * options.refresh
    args += ["--no-smoke"] * (not options.smoke)
    if options.samples is not None:
        # A CSV's rows name files beside it: its folder is mounted, the CSV named inside it.
        inside = f"/samples/{options.samples.name}" if options.samples.is_file() else "/samples"
        args += ["--samples", inside]
    args += ["--max-accuracy-drop", str(options.max_accuracy_drop)]
    return args


def pack_in_docker(options: PackOptions, docker: DockerOptions, log: Callable[[str], None] = print) -> Report:
    """Run the pipeline for ``options`` in a container; return the report it wrote to ``options.out``."""
    if why := refusal(options):
        raise InputError(why)
    model, out, cache_dir, samples = options.model, options.out, options.cache_dir, options.samples
    python, quantize, config = options.target.python, options.quantize, options.config
    model_format = options.runtime.model_format
    client = docker_client()
    base_image = docker.base_image or OFFICIAL_IMAGES[python]
    tag = ensure_image(client, base_image, log, docker.host_network)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lambdapack-model-") as prepared:
        found = sample_set(samples)
        labels = list(options.labels) if options.labels else None
        require_labels(model, config, labels, found)
        result = prepare_model(
            model,
            Path(prepared),
            cache_dir,
            quantize,
            config,
            found.paths if found is not None else None,
            model_format,
            allow_unsafe_ops=options.allow_unsafe_ops,
            labels=labels,
            labelled=found,
        )
        (Path(prepared) / "check.json").write_text(json.dumps(result.check))
        (Path(prepared) / "source.json").write_text(
            json.dumps(
                {
                    "source": str(model),
                    "kind": result.kind,
                    "quantize": quantize,
                    "config": None if result.config_path is None else str(result.config_path),
                }
            )
        )
        volumes = {
            str(package_dir()): {"bind": "/src/lambdapack", "mode": "ro"},
            str(out.resolve()): {"bind": "/outputs", "mode": "rw"},
            str(Path(prepared)): {"bind": "/model", "mode": "ro"},
            str(cache_dir.resolve()): {"bind": "/cache", "mode": "rw"},
            str(options.handler_dir.resolve()): {"bind": "/handler", "mode": "ro"},
        }
        args = container_args(options)
        if samples is not None:
            folder = samples.resolve().parent if samples.is_file() else samples.resolve()
            volumes[str(folder)] = {"bind": "/samples", "mode": "ro"}
        run = {"network_mode": "host"} if docker.host_network else {}
        if docker.host_network:
            for path in HOST_NETWORK_MOUNTS:
                if os.path.exists(path):
                    volumes[path] = {"bind": path, "mode": "ro"}
        cache_dir.mkdir(parents=True, exist_ok=True)
        container = client.containers.create(
            tag,
            command=args,
            volumes=volumes,
            environment={
                "LAMBDAPACK_BUILDER": "docker",
                "LAMBDAPACK_BASE_IMAGE": base_image,
                "PYTHONPATH": "/src",
                "HOME": "/tmp",
                "COLUMNS": "120",
                "LAMBDAPACK_REQUIREMENTS": "\n".join(builder_requirements()),
            },
            user=f"{os.getuid()}:{os.getgid()}",
            **run,
        )
        try:
            container.start()
            # stderr carries the stage-by-stage progress; the report is rendered here.
            for line in container.logs(stream=True, follow=True, stdout=False, stderr=True):
                log(line.decode(errors="replace").rstrip())
            status = container.wait()
        finally:
            container.remove(force=True)
    code = int(status.get("StatusCode", 1))
    if code != 0:
        error = PackError(
            f"the pack in the {base_image} container failed (exit code {code}): see its log above"
        )
        error.exit_code = code
        raise error
    report = Report.from_dict(json.loads((out / "report.json").read_text()))
    report.zip.path = str(out / "function.zip")
    if "deps" in report.build:
        report.build["deps"]["path"] = str(out / report.build["deps"]["file"])
    (out / "report.json").write_text(report.to_json())
    return report


# What a pack inside the container never uses: it makes no AWS call and starts no container.
NOT_IN_THE_BUILDER = frozenset({"boto3", "docker"})


def builder_requirements() -> list[str]:
    """lambdapack's own requirements, from its installed metadata (pyproject.toml is their
    one home), without extras and without what a pack in the container never uses."""
    from packaging.requirements import Requirement

    wanted = []
    for text in importlib.metadata.requires("lambdapack") or []:
        requirement = Requirement(text)
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        if requirement.name.lower() not in NOT_IN_THE_BUILDER:
            wanted.append(text)
    return wanted


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
