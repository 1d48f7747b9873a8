"""Where the project is, for a deployment's pull step: the directory that holds the installed ``flows`` package.

A worker started anywhere finds the project through the package it imports (``pip install -e .`` in a clone, or
an installed wheel, whose ``flows/`` sits in site-packages): no environment variable is needed.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_root() -> dict[str, str]:
    """A Prefect pull step: ``{"directory": <project root>}`` for ``set_working_directory`` to change into."""
    return {"directory": str(PROJECT_ROOT)}
