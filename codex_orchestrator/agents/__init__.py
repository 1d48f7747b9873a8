"""Agents driven under the gate."""
