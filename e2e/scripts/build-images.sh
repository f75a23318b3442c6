#!/usr/bin/env bash
# Builds the two images Gofer's Docker tests and debug tasks run, without a
# registry (none is reachable here, and a cluster must not depend on one):
#
#   gofer/gofer:latest    the static gofer binary as /gofer, ENTRYPOINT
#                         ["/gofer"], nothing else (the same as FROM scratch +
#                         COPY), so a task with command ["debug","log"] runs
#                         the debug tools.
#   gofer/busybox:latest  Debian's busybox-static with the usual applets, for
#                         tasks that need a shell.
#
# Both are made with `docker import` of a tar: it needs neither a registry
# nor a builder (BuildKit/buildx is not installed on every engine host).
# Each image carries a label with the sha256 of what went into it; when the
# label matches, the image is left alone, so re-running is quick and
# concurrent runs (parallel test packages) agree. A flock serializes them.
#
# Environment: GOFER_BIN (default bin/gofer) is the binary to package.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
gofer_bin=${GOFER_BIN:-$repo/bin/gofer}
gofer_image=gofer/gofer:latest
busybox_image=gofer/busybox:latest
label=gofer.content.sha256
# Applets linked into the busybox image. Changing this list changes the
# content hash, so the image is rebuilt.
applets=(sh ash echo sleep cat env printenv ls true false date seq yes head tail wc grep
  sed awk cut sort uniq tr tee touch mkdir rm cp mv ln chmod pwd id whoami hostname
  uname ps kill test expr basename dirname find xargs which wget nc timeout printf
  mktemp stat sha256sum)

log() { echo "build-images: $*"; }

# One build at a time on this host: parallel test binaries call us too.
exec 9>"${TMPDIR:-/tmp}/gofer-build-images.lock"
flock 9

current_label() { # image -> its content label, or nothing if absent
  docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null || true
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# import_rootfs image hash dir changes... : import dir as image, labelled
# with hash, then drop the image it replaced if nothing else uses it.
import_rootfs() {
  local image=$1 hash=$2 dir=$3
  shift 3
  local old changes=()
  old=$(image_id "$image")
  for c in "$@" "LABEL $label=$hash"; do changes+=(--change "$c"); done
  tar -C "$dir" --numeric-owner --owner=0 --group=0 -cf - . |
    docker import "${changes[@]}" - "$image" >/dev/null
  if [ -n "$old" ] && [ "$old" != "$(image_id "$image")" ]; then
    docker image rm "$old" >/dev/null 2>&1 || true # still used by a container: leave it
  fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- gofer/gofer -----------------------------------------------------------
if [ ! -x "$gofer_bin" ]; then
  echo "build-images: $gofer_bin not found; run 'make build' or set GOFER_BIN" >&2
  exit 1
fi
if ! file -b "$gofer_bin" | grep -q 'statically linked'; then
  echo "build-images: $gofer_bin is not statically linked (build it with CGO_ENABLED=0)" >&2
  exit 1
fi
hash=$(sha256sum "$gofer_bin" | cut -d' ' -f1)
if [ "$(current_label "$gofer_image")" = "$hash" ]; then
  log "$gofer_image up to date (binary ${hash:0:12})"
else
  mkdir "$tmp/gofer"
  cp "$gofer_bin" "$tmp/gofer/gofer"
  chmod 0755 "$tmp/gofer/gofer"
  import_rootfs "$gofer_image" "$hash" "$tmp/gofer" 'ENTRYPOINT ["/gofer"]'
  log "built $gofer_image from $gofer_bin (binary ${hash:0:12})"
fi

# --- gofer/busybox ---------------------------------------------------------
busybox=/bin/busybox
if ! { [ -x "$busybox" ] && file -b "$busybox" | grep -q 'statically linked'; }; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-images: a static busybox is needed: apt-get install busybox-static" >&2
    exit 1
  fi
  log "installing busybox-static"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends busybox-static >/dev/null ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends busybox-static >/dev/null; }
fi
hash=$( { sha256sum "$busybox" | cut -d' ' -f1; printf '%s\n' "${applets[@]}"; } | sha256sum | cut -d' ' -f1)
if [ "$(current_label "$busybox_image")" = "$hash" ]; then
  log "$busybox_image up to date (content ${hash:0:12})"
else
  root=$tmp/busybox
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
  chmod 1777 "$root/tmp"
  cp "$busybox" "$root/bin/busybox"
  chmod 0755 "$root/bin/busybox"
  for a in "${applets[@]}"; do ln -s busybox "$root/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  import_rootfs "$busybox_image" "$hash" "$root" 'ENV PATH=/bin' 'CMD ["/bin/sh"]'
  log "built $busybox_image from $busybox (${#applets[@]} applets, content ${hash:0:12})"
fi
