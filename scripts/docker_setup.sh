#!/bin/sh
# Prepare what running each target in its own interpreter needs: Debian's docker.io,
# a running engine (started here only if none answers), QEMU user emulation for
# arm64, and local images of each target's Python built with debootstrap, cached by
# tag — no image registry is reachable here, so nothing is pulled:
#   lambdapack-base:bookworm       python3.11 x86_64 (+ pip, venv, binutils: the Docker builder)
#   lambdapack-base:trixie         python3.13 x86_64 (+ pip, venv, binutils)
#   lambdapack-base:forky          python3.14 x86_64
#   lambdapack-base:trixie-arm64   python3.13 arm64, run under QEMU
# (Debian has no python3.12.) This script never fails the build: it says in one
# line what could not be set up, and the tests that need it skip with that reason.
set -u
log() { echo "docker setup: $*"; }
mkdir -p build
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

missing=""
for tool in dockerd debootstrap qemu-aarch64-static update-binfmts; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        docker.io debootstrap qemu-user-static binfmt-support) \
        > build/docker-apt.log 2>&1 || { log "could not install docker.io, debootstrap, qemu (build/docker-apt.log)"; exit 0; }
fi
if ! docker info >/dev/null 2>&1; then
    nohup dockerd > build/dockerd.log 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { log "dockerd did not start (build/dockerd.log)"; exit 0; }
fi

# arm64 binaries run under QEMU through binfmt_misc.
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || log "QEMU user emulation for arm64 is not available (binfmt_misc)"

# image TAG SUITE ARCH PACKAGES [SCRIPT]: debootstrap a minimal root, import it as TAG.
image() {
    tag="lambdapack-base:$1"; suite=$2; arch=$3; packages=$4; script=${5:-}
    docker image inspect "$tag" >/dev/null 2>&1 && return 0
    if [ "$arch" = arm64 ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        log "skipped $tag: no QEMU for arm64"; return 0
    fi
    root=$(mktemp -d)
    # shellcheck disable=SC2086  # $script is empty or one path
    if debootstrap --variant=minbase --arch="$arch" --include="$packages" "$suite" "$root/rootfs" \
            "$MIRROR" $script > "build/debootstrap-$1.log" 2>&1; then
        if [ "$arch" = amd64 ]; then
            tar -C "$root/rootfs" -c . | docker import - "$tag" >/dev/null || log "docker import $tag failed"
        else
            # Debian's engine ignores `docker import --platform`; a FROM scratch build labels it arm64.
            tar -C "$root/rootfs" -cf "$root/rootfs.tar" . && rm -rf "$root/rootfs"
            printf 'FROM scratch\nADD rootfs.tar /\n' > "$root/Dockerfile"
            DOCKER_BUILDKIT=0 docker build -q --platform "linux/$arch" -t "$tag" "$root" >/dev/null \
                || log "docker build $tag failed"
        fi
    else
        log "debootstrap $1 failed (build/debootstrap-$1.log)"
    fi
    rm -rf "$root"
}

image bookworm bookworm amd64 python3,python3-pip,python3-venv,binutils,ca-certificates
image trixie trixie amd64 python3,python3-pip,python3-venv,binutils,ca-certificates
image forky forky amd64 python3.14,ca-certificates /usr/share/debootstrap/scripts/sid
image trixie-arm64 trixie arm64 python3.13,ca-certificates
log "engine up; base images: $(docker images lambdapack-base --format '{{.Tag}}' | sort | tr '\n' ' ')"
