"""Implementations of the domain's protocols: Compose CLI, Engine API."""
