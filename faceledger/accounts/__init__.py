"""Users, API tokens, passwords and web sessions."""
