"""Layer 4: ``fieldkit serve`` — the catalogue in a browser (Starlette, Jinja2, uvicorn), read-only."""
