from tests.live import live_server  # noqa: F401
