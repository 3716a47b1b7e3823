"""The benchmark upstream: the demo CRM without a recorder, in its own process.

python -m bench.upstream PORT
"""

from __future__ import annotations

import sys

from aiohttp import web

from gateway.demo.crm import make_crm_app


def main() -> None:
    web.run_app(
        make_crm_app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None
    )


if __name__ == "__main__":
    main()
