"""``dlcli serve RUN``: a finished run behind HTTP (FastAPI + uvicorn, the optional ``serve`` extra).

:mod:`dlcli.serve.inputs` turns request bodies into the same :class:`~dlcli.training.predict.Inputs` that
``dlcli predict`` reads from files (one reader per kind of input, shared); :mod:`dlcli.serve.batcher`
gathers concurrent requests into one forward pass; :mod:`dlcli.serve.app` is the FastAPI app.
Nothing here imports fastapi at import time except ``app``.
"""
