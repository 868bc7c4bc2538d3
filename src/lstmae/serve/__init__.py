"""`lstmae serve`: the HTTP service (optional extra: pip install 'lstmae[serve]').

    from lstmae.serve import create_app
    app = create_app("model_dir")          # a FastAPI app; run it with uvicorn

See `lstmae.serve.app` for the endpoints and `lstmae.serve.requests` for what a request may hold.
"""
from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'lstmae.serve' has no attribute {name!r}")
