"""`sanji hub serve`: the aiohttp app on a host and port, until interrupted."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from hub.app import HubConfig, create_app
from hub.store import HubStore

log = logging.getLogger("sanji.hub")


def serve(folder: Path, *, host: str, port: int, nightly: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    store = HubStore.open(folder)
    check = store.quick_check()
    store.close()
    if check != "ok":
        raise RuntimeError(f"hub database failed its integrity check: {check}; restore from a backup")
    app = create_app(HubConfig(folder=folder, host=host, port=port, nightly=nightly))
    print(f"Sanji hub serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
