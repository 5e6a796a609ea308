"""Orchestrator functions: deterministic code only (no I/O, clocks, random numbers or env reads)."""
