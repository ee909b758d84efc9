"""The ASGI app for uvicorn (`streamr_coordinator.main:app`), configured from the environment.

Everything imported and built so far lives as long as the process: moved out of the garbage
collector's sight (`gc.freeze`), a full collection no longer walks the whole framework's objects,
which otherwise is a pause of milliseconds in some request's latency (the hooks' p99).
"""

import gc

from .app import create_app

app = create_app()
gc.collect()
gc.freeze()
