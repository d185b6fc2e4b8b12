"""Readers of the real archives, one module per kind of input."""

__all__: list[str] = []
