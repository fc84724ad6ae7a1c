"""Container HEALTHCHECK: exit 0 when the server in this container answers GET /healthz.

Plain urllib so the image needs no curl. It reads the same HOST and PORT the server binds to; a
wildcard bind address is reached through loopback. A container started as `reasoning-agent
worker` serves its probes on WORKER_PORT instead: set HEALTHCHECK_PORT to it (compose and the
Kubernetes manifests do).
"""

import os
import sys
import urllib.request

WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 - names the wildcard, binds nothing


def healthz_url() -> str:
    host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104 - the server's own default
    port = os.environ.get("HEALTHCHECK_PORT") or os.environ.get("PORT", "8000")
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    try:
        with urllib.request.urlopen(healthz_url(), timeout=4) as response:  # noqa: S310 - http URL built above
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"healthcheck: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
