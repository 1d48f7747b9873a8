"""A tiny calculator module the demo's scripted agent extends."""


def add(a: float, b: float) -> float:
    return a + b


def subtract(a: float, b: float) -> float:
    return a - b
