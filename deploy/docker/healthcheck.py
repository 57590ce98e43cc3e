"""Docker HEALTHCHECK of the Sinergi image: GET /health of the service in this container.

The service is the one PID 1 runs (`python -m services.<name>`); its port is
`<NAME>_PORT` from the container's environment, else the port in
shared/runtime/topology.py. Exit 0 when /health answers 200, else 1.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.request


def service_name() -> str | None:
    try:
        with open("/proc/1/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    for arg in argv:
        match = re.fullmatch(r"services\.([a-z_]+)", arg)
        if match:
            return match.group(1)
    return None


def port_of(name: str) -> int:
    configured = os.environ.get(f"{name.upper()}_PORT")
    if configured:
        return int(configured)
    sys.path.insert(0, "/app")
    from shared.runtime.topology import SERVICES

    return next(s.port for s in SERVICES if s.name == name)


def main() -> int:
    name = service_name()
    if name is None:
        print("no Sinergi service runs as PID 1", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{port_of(name)}/health"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
