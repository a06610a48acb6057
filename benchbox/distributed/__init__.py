"""Executors that run a plan's work somewhere other than this process (optional: Ray)."""
