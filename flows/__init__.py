"""Prefect orchestration: the generation loop runs DVC stages; no ML logic here."""
