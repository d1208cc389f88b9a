#!/bin/sh
# Prepare what the Docker builder's tests need: Debian's docker.io, a running
# engine (started here only if none answers), and local base images built with
# debootstrap — bookworm (python3.11) and trixie (python3.13) — cached by tag.
# No image registry is reachable here, so nothing is pulled. This script never
# fails the build: it says in one line what could not be set up, and the tests
# that need it skip with that reason.
set -u
log() { echo "docker setup: $*"; }
mkdir -p build
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap) \
        > build/docker-apt.log 2>&1 || { log "could not install docker.io and debootstrap (build/docker-apt.log)"; exit 0; }
fi
if ! docker info >/dev/null 2>&1; then
    nohup dockerd > build/dockerd.log 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { log "dockerd did not start (build/dockerd.log)"; exit 0; }
fi
for suite in bookworm trixie; do
    tag="lambdapack-base:$suite"
    docker image inspect "$tag" >/dev/null 2>&1 && continue
    root=$(mktemp -d)
    if debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,binutils,ca-certificates \
            "$suite" "$root/rootfs" > "build/debootstrap-$suite.log" 2>&1; then
        tar -C "$root/rootfs" -c . | docker import - "$tag" >/dev/null || log "docker import $tag failed"
    else
        log "debootstrap $suite failed (build/debootstrap-$suite.log)"
    fi
    rm -rf "$root"
done
log "engine up; base images: $(docker images lambdapack-base --format '{{.Tag}}' | tr '\n' ' ')"
