"""Prefect flows: the parent ``autonomy`` flow (autonomy.py) and its four milestone subflows (milestones.py)."""
