"""The server-rendered web UI (Jinja2 templates, one static script and one stylesheet)."""
