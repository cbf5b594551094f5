"""Simulation support: a seeded network with faults (see network.py)."""
