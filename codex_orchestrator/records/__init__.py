"""Run records: atomic manifests (manifest.py), the append-only event log (events.py), metrics (metrics.py)."""
