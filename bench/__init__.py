"""Benchmarks: gate overhead against Prefect baselines (gate_overhead.py) and exec delivery (exec_latency.py)."""
