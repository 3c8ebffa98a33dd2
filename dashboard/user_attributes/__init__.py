"""Settings → User attributes: the declared attribute keys (admin)."""
