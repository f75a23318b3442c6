#!/usr/bin/env bash
# `make run`: a dev server in the foreground (auth off, loopback only) with
# the sample pipeline from examples/simple registered and deployed.
set -euo pipefail
GOFER=${GOFER:-bin/gofer}
DEV_API=${DEV_API:-127.0.0.1:8080}
DEV_RAFT=${DEV_RAFT:-127.0.0.1:8081}
DEV_DATA=${DEV_DATA:-.gofer-dev}
# Task containers share the host network, so a task with inject_api_token
# reaches this loopback-only server at GOFER_API_BASE_URL (examples/objects
# stores a run object that way). DEV_NETWORK=bridge isolates them instead.
DEV_NETWORK=${DEV_NETWORK:-host}
URL="http://$DEV_API"

# Another server answering here (a second `make run`) would pass the
# health check below for ours, which then fails on the data dir in use.
if curl -fsS --max-time 2 "$URL/api/system/health" >/dev/null 2>&1; then
  echo "error: a Gofer server already answers at $URL (another \`make run\`?); stop it, or pick another address with DEV_API=127.0.0.1:PORT DEV_RAFT=127.0.0.1:PORT DEV_DATA=DIR" >&2
  exit 1
fi

GOFER_WEB_SCHEDULER__DOCKER__NETWORK="$DEV_NETWORK" \
  "$GOFER" service start --dev --data-dir "$DEV_DATA" --api-addr "$DEV_API" --raft-addr "$DEV_RAFT" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null' INT TERM EXIT

for _ in $(seq 1 100); do
  curl -fsS "$URL/api/system/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "the dev server exited; see its log above" >&2; exit 1; }
  sleep 0.1
done
kill -0 $server 2>/dev/null || { echo "the dev server exited; see its log above" >&2; exit 1; }

# Register the sample pipeline the way users do: gofer up builds the Go
# program in examples/simple, registers what it prints and deploys it (or
# says it is already live).
"$GOFER" -a "$URL" up examples/simple >/dev/null

cat <<MSG

  ✓ Dev server running at $URL with pipeline "simple" (examples/simple/main.go) live.

  Try:  $GOFER -a $URL pipeline run simple --watch     # run it and follow its tasks
        $GOFER -a $URL task logs simple 1 world        # a task's output
        $GOFER -a $URL run list simple
        $GOFER -a $URL pipeline get simple
        $GOFER -a $URL event list

  Ctrl-C stops the server (its data stays in $DEV_DATA).
MSG
wait $server
