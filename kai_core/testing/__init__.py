"""Emulated Kai backend."""
