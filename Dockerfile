# ReasoningAgent service image.
#
#   docker build -t reasoning-agent .
#   docker run -e OPENAI_API_KEY=sk-... -e API_KEYS=key1,key2 -e RATE_LIMIT=60/minute \
#     -p 8000:8000 reasoning-agent
#
# Two stages on Debian bookworm: `build` compiles the Rust engine into a wheel with maturin and
# installs it with its locked runtime dependencies into /opt/venv; `runtime` is debian-slim with
# python3, that venv and nothing else. Behind a TLS-intercepting proxy, hand its CA bundle to the
# build as a secret (it never lands in a layer):
#   docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t reasoning-agent .
# See docs/deploy.md.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# --- build: Rust toolchain + maturin -> wheel -> /opt/venv ---------------------------------------
FROM ${DEBIAN_IMAGE} AS build

# rustc-web/cargo-web (1.96): bookworm's plain rustc (1.63) is older than agent_core's rust-version.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-venv rustc-web cargo-web \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# pip and cargo verify TLS against the system bundle; every RUN that reaches the network mounts
# the optional `ca` build secret over it (a proxy's CA bundle; never stored in a layer).
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    CARGO_HTTP_CAINFO=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CARGO_TERM_COLOR=never

WORKDIR /src

# Layers from the least to the most often changed: the lock file, then the dependency list, then
# the sources. Dependency installs stay cached while only code changes.
COPY requirements/lock.txt requirements/lock.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca,target=/etc/ssl/certs/ca-certificates.crt,required=false \
    python3 -m venv /opt/maturin \
    && /opt/maturin/bin/pip install --constraint requirements/lock.txt maturin

# The service's runtime dependencies (pyproject's [project].dependencies, never the dev extra),
# at the versions requirements/lock.txt pins.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca,target=/etc/ssl/certs/ca-certificates.crt,required=false \
    python3 -m venv /opt/venv \
    && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/runtime-requirements.txt \
    && /opt/venv/bin/pip install --constraint requirements/lock.txt -r /tmp/runtime-requirements.txt

COPY Cargo.toml Cargo.lock README.md ./
COPY agent_core agent_core
COPY providers providers
COPY api api
# The crate registry and target dir are cache mounts: a code change recompiles only agent_core.
RUN --mount=type=cache,target=/root/.cargo/registry \
    --mount=type=cache,target=/src/target \
    --mount=type=secret,id=ca,target=/etc/ssl/certs/ca-certificates.crt,required=false \
    /opt/maturin/bin/maturin build --release --locked --interpreter /opt/venv/bin/python --out /wheels \
    && /opt/venv/bin/pip install --no-deps --no-index /wheels/*.whl \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -I -c 'import agent_core, api, providers' \
    && /opt/venv/bin/pip uninstall -y pip setuptools

# --- runtime: python3 + the venv, non-root -------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS runtime

# tini as PID 1 forwards SIGTERM to the server and reaps worker processes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && install -d -o app -g app -m 0750 /app/data

COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /app/healthcheck.py
COPY plugins.toml /app/plugins.toml

# HOST/PORT/WORKERS are read by `reasoning-agent serve`. History defaults to SQLite in DATA_DIR
# (mount a volume there, or set DATABASE_URL to PostgreSQL for more than one replica); rate
# limits default to per-process memory (set REDIS_URL to share them). Mount another
# plugins.toml over /app/plugins.toml, or point REASONING_AGENT_CONFIG elsewhere.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=1 \
    DATA_DIR=/app/data \
    REASONING_AGENT_CONFIG=/app/plugins.toml

WORKDIR /app
USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "/app/healthcheck.py"]

# Exec form: tini receives SIGTERM and passes it on; uvicorn stops accepting, lets in-flight
# requests finish (up to GRACEFUL_SHUTDOWN_SECONDS, default 30) and the container exits 0 (tini
# passes on the server's status; `reasoning-agent serve` ends on the SIGTERM uvicorn hands back
# after the drain with 0, not 143). Give the engine a longer stop timeout than that
# (docker run --stop-timeout 40; compose stop_grace_period), or it kills the server: 137.
# The command chooses the role: `reasoning-agent serve` (the API, the default) or
# `reasoning-agent worker` (background tasks from the Redis queue; its probes and /metrics on
# WORKER_PORT, so set HEALTHCHECK_PORT to it for the HEALTHCHECK above). A worker stops the same
# way: running tasks finish for JOB_SHUTDOWN_SECONDS (30), the rest go back to the queue.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["reasoning-agent", "serve"]
