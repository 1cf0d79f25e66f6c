#!/usr/bin/env bash
# Build the tiny offline "fake vLLM" test image from busybox-static (no registry pulls).
#
#   tests/docker_image/build.sh [TAG ...]     default TAG: vllmtune-test/fake-vllm:latest
#   e.g. tests/docker_image/build.sh vllmtune-test/fake-vllm:latest vllm/vllm-openai:v0.32.0
#
# Idempotent: the image carries a content-hash label; if the first tag already has the
# current hash nothing is imported, and the other tags are only (re)pointed at it.
# Uses the docker CLI, so honour DOCKER_HOST (see scripts/start_dockerd.sh).
# Env: BUSYBOX=/path/to/static/busybox (default /bin/busybox, Debian busybox-static).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
LABEL_KEY="org.vllmtune.fake-vllm.hash"
FORMAT_VERSION=1   # bump to force a rebuild when the layout below changes

if [ $# -eq 0 ]; then
    set -- vllmtune-test/fake-vllm:latest
fi

if [ ! -x "$BUSYBOX" ]; then
    echo "build.sh: $BUSYBOX not found; apt-get install -y busybox-static" >&2
    exit 1
fi
if command -v ldd >/dev/null 2>&1 && ldd "$BUSYBOX" 2>&1 | grep -q '=>'; then
    echo "build.sh: $BUSYBOX is dynamically linked; need busybox-static" >&2
    exit 1
fi
if ! docker version >/dev/null 2>&1; then
    echo "build.sh: docker daemon not reachable (DOCKER_HOST=${DOCKER_HOST:-unset})" >&2
    exit 1
fi

HASH="$( { echo "format=$FORMAT_VERSION"; cat "$BUSYBOX" "$HERE/vllm" "$HERE/handler.sh" "$HERE/python3"; } \
         | sha256sum | cut -c1-32)"
MAIN_TAG="$1"

current="$(docker image inspect -f "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$MAIN_TAG" 2>/dev/null || true)"
if [ "$current" = "$HASH" ]; then
    echo "build.sh: $MAIN_TAG is up to date ($HASH)" >&2
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/fake-vllm-rootfs.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    root="$work/rootfs"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/lib/fake-vllm,etc,tmp,root,proc,sys,dev,var/run}
    chmod 1777 "$root/tmp"
    cp "$BUSYBOX" "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    # One symlink per applet in /bin (sh, nc, sleep, head, date, ...).
    for applet in $("$BUSYBOX" --list); do
        [ "$applet" = busybox ] && continue
        ln -sf busybox "$root/bin/$applet"
    done
    install -m 0755 "$HERE/vllm" "$root/usr/local/bin/vllm"
    install -m 0755 "$HERE/handler.sh" "$root/usr/local/lib/fake-vllm/handler.sh"
    install -m 0755 "$HERE/python3" "$root/usr/local/bin/python3"  # the compose healthcheck's
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .
    docker import \
        --change 'ENTRYPOINT ["vllm", "serve"]' \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'WORKDIR /root' \
        --change 'EXPOSE 8000' \
        --change "LABEL $LABEL_KEY=$HASH" \
        --message "vllmtune fake vLLM test image (busybox)" \
        "$work/rootfs.tar" "$MAIN_TAG" >/dev/null
    echo "build.sh: imported $MAIN_TAG ($HASH)" >&2
fi

main_id="$(docker image inspect -f '{{.Id}}' "$MAIN_TAG")"
shift
for tag in "$@"; do
    id="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
    if [ "$id" != "$main_id" ]; then
        docker tag "$main_id" "$tag"
        echo "build.sh: tagged $tag" >&2
    fi
done
echo "$main_id"
