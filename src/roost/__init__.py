"""Roost: a crash-safe agent server that speaks OpenCode's HTTP API."""

__version__ = "0.1.0"
