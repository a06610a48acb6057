"""Reports and the readiness check: read only the results store."""
