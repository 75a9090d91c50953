"""Seeing what happens: metrics, the status snapshot, incidents and the alert sinks they fire."""
