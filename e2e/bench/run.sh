#!/usr/bin/env bash
# Gofer vs etcd 3.4, side by side on this machine (make bench).
#
# Installs etcd from Debian's packages if it is missing, builds the
# benchmark program (its own module, e2e/bench/go.mod), then measures both
# systems back to back in one run and prints the table; the table is also
# written to e2e/bench/results/latest.txt.
#
#   GOFER_BIN=/abs/path/bin/gofer e2e/bench/run.sh [flags]
#   make bench BENCH_FLAGS="-runs 5 -trials 7"
#   make bench BENCH_FLAGS="-only-triggers"   # trigger accuracy only (~2.5 min)
#
# Flags (or BENCH_FLAGS) go to the Go program; `run.sh -h` lists them.
# Every etcd and gofer process it starts is killed at the end, on failure
# and on Ctrl-C, and every container the runs benchmarks started (raw
# `docker run --rm` anchors and the bench clusters' task containers, found
# by label) is removed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# --- dependencies: etcd 3.4 server and client from Debian ------------------
# (not needed when only the runs benchmarks run)
need=()
case " ${BENCH_FLAGS:-} $* " in
  *" -only-runs "* | *" --only-runs "* | *" -only-triggers "* | *" --only-triggers "*) ;;
  *)
    command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
    command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
    ;;
esac
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]} (Debian packages)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "bench: missing ${need[*]}; run: apt-get install ${need[*]}" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null || true
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package may try to start a system etcd on 2379; the benchmark uses
  # its own members on free ports and never touches a system service.
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/gofer-bench.XXXXXX")"
bench_pid=""
keep=0
case " ${BENCH_FLAGS:-} $* " in *" -keep "* | *" --keep "*) keep=1 ;; esac

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$bench_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$bench_pid" 2>/dev/null || true
  fi
  # Anything the benchmark started that is still alive (the Go program also
  # kills them itself; this covers it being killed). Only pids whose command
  # line points into our work dir are touched.
  if [ -f "$work/run/pids" ]; then
    while read -r pid; do
      [ -n "$pid" ] || continue
      if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$work"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"$work/run/pids"
  fi
  # Containers of the runs benchmarks (the Go program removes them itself;
  # this covers it being killed): one label per line, e.g.
  # gofer.bench=<id> for the raw runs and gofer.cluster=<id> per cluster.
  if [ -f "$work/run/docker-labels" ] && command -v docker >/dev/null 2>&1; then
    while read -r label; do
      [ -n "$label" ] || continue
      ids="$(docker ps -aq --filter "label=$label" 2>/dev/null || true)"
      # shellcheck disable=SC2086 # ids is a list
      [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    done <"$work/run/docker-labels"
  fi
  if [ "$keep" = 1 ]; then echo "bench: kept $work (data dirs and logs under $work/run)" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- the gofer binary -------------------------------------------------------
if [ -z "${GOFER_BIN:-}" ]; then
  echo "bench: GOFER_BIN not set; building gofer into $work"
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/gofer" .)
  GOFER_BIN="$work/gofer"
fi
export GOFER_BIN

# --- the benchmark program --------------------------------------------------
echo "bench: building the benchmark program (e2e/bench)"
(cd "$here" && go build -o "$work/goferbench" .)

mkdir -p "$here/results"
# shellcheck disable=SC2086 # BENCH_FLAGS is a list of flags
"$work/goferbench" -workdir "$work/run" -out "$here/results/latest.txt" ${BENCH_FLAGS:-} "$@" &
bench_pid=$!
wait "$bench_pid"
