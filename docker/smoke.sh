#!/usr/bin/env bash
# Builds the images and tries them as a user would (`make docker-smoke`):
#   1. the CPU image serves the demo model (as a user other than root, without the training
#      stack): /health, a chat request;
#   2. compose: Deliberate in remote mode in front of two vLLM replicas answers a chat request,
#      and Prometheus scrapes all three.
# BASE: the images' base (default python:3.11-slim; where it cannot be pulled, a local Debian
# base is made with docker/base-image.sh). Host ports: SMOKE_PORT .. SMOKE_PORT+2 on 127.0.0.1.
# Prints build times and image sizes. Needs a running Docker daemon (BuildKit or the classic
# builder).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${SMOKE_PORT:-8390}
BASE=${BASE:-python:3.11-slim}
DEBIAN_BASE=${DEBIAN_BASE:-debian:bookworm-slim}
PROJECT=deliberate-smoke

have_image() { docker image inspect "$1" >/dev/null 2>&1 || timeout 60 docker pull -q "$1" >/dev/null 2>&1; }
if ! have_image "$BASE" || ! have_image "$DEBIAN_BASE"; then
  echo "== no $BASE / $DEBIAN_BASE from a registry: a local Debian base (docker/base-image.sh)"
  docker/base-image.sh deliberate-base:bookworm
  BASE=deliberate-base:bookworm
  DEBIAN_BASE=deliberate-base:bookworm
fi

# Build inputs from this host's pip configuration, if it has them (docker/local/README.md).
mkdir -p docker/local/wheels
cert=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
[ -n "$cert" ] && [ -f "$cert" ] && cp "$cert" docker/local/ca-certificates.crt
python3 -m pip download -q --no-deps --no-index -d docker/local/wheels torch==2.13.0+cpu \
  2>/dev/null && echo "== torch 2.13.0+cpu from this host's wheel folder" || true

timed_build() {  # name, then docker build arguments
  local name=$1; shift
  local start=$SECONDS
  docker build -q "$@" >/dev/null
  echo "$name built in $((SECONDS - start)) s, $(docker image inspect -f '{{.Size}}' "$name" |
    awk '{printf "%.2f GB", $1 / 1e9}')"
}
echo "== building (BASE=$BASE)"
timed_build deliberate:cpu -f docker/Dockerfile.cpu --build-arg BASE="$BASE" -t deliberate:cpu .
timed_build deliberate-prometheus -f docker/Dockerfile.prometheus \
  --build-arg BASE="$DEBIAN_BASE" -t deliberate-prometheus docker

wait_for() {  # url, seconds
  for _ in $(seq "$2"); do curl -sf -o /dev/null "$1" && return 0; sleep 1; done
  echo "FAILED: $1 not ready after $2 s"; return 1
}
chat() {  # base url [temperature]: a chat request whose answer must have an Answer line
  curl -sf "$1/v1/chat/completions" -H 'Content-Type: application/json' -d '{"model": "demo",
    "messages": [{"role": "user", "content": "Compute: 48+17*3-29*2+11"}], "max_tokens": 96,
    "temperature": '"${2:-0}"', "seed": 1}' | python3 -c 'import json, sys
answer = json.load(sys.stdin)["choices"][0]["message"]["content"]
print("   answer:", answer.replace("\n", " | "))
assert answer and ("Answer:" in answer or sys.argv[1] != "0"), answer' "${2:-0}"
}

echo "== 1. the CPU image serves the demo model"
container=$(docker run -d --rm -p "127.0.0.1:$PORT:8000" deliberate:cpu)
trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT
start=$SECONDS
wait_for "http://127.0.0.1:$PORT/health" 240
echo "   healthy after $((SECONDS - start)) s"
[ "$(docker exec "$container" id -u)" != 0 ] || { echo "FAILED: the image runs as root"; exit 1; }
docker exec "$container" python -c 'import importlib.util, sys
stack = [m for m in ("trl", "datasets", "accelerate", "bitsandbytes", "peft", "training")
         if importlib.util.find_spec(m)]
sys.exit(f"FAILED: the serving image carries {stack}" if stack else 0)'
echo "   runs as $(docker exec "$container" id -un), without the training stack"
chat "http://127.0.0.1:$PORT"
chat "http://127.0.0.1:$PORT" 1  # sampled: torch compiles vLLM's sampler here (needs g++)
curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"
docker rm -f "$container" >/dev/null

echo "== 2. compose: Deliberate (remote) in front of two vLLM replicas, Prometheus scraping"
compose() {
  BASE=$BASE DEBIAN_BASE=$DEBIAN_BASE DELIBERATE_PUBLISH="127.0.0.1:$((PORT + 1))" \
    PROMETHEUS_PUBLISH="127.0.0.1:$((PORT + 2))" docker-compose -p "$PROJECT" \
    -f docker/compose.yaml "$@"
}
trap 'compose down -v >/dev/null 2>&1 || true' EXIT
start=$SECONDS
compose up -d --no-build
wait_for "http://127.0.0.1:$((PORT + 1))/health" 300
echo "   fleet healthy after $((SECONDS - start)) s"
chat "http://127.0.0.1:$((PORT + 1))"
curl -sf "http://127.0.0.1:$((PORT + 1))/metrics" | grep -q '^deliberate_upstream_calls_total{replica="http://vllm-' \
  || { echo "FAILED: no upstream calls counted"; exit 1; }
for _ in $(seq 60); do
  up=$(curl -sf "http://127.0.0.1:$((PORT + 2))/api/v1/query?query=up" | python3 -c 'import json, sys
print(sum(r["value"][1] == "1" for r in json.load(sys.stdin)["data"]["result"]))' || echo 0)
  [ "$up" = 3 ] && break
  sleep 2
done
[ "$up" = 3 ] || { echo "FAILED: Prometheus scrapes $up of 3 targets"; exit 1; }
echo "   Prometheus scrapes 3 of 3 targets (deliberate, vllm-a, vllm-b)"
compose down -v >/dev/null 2>&1
echo "== docker smoke test passed"
