"""Shared fixtures: the replica world and its served endpoints come from cubestream.testing."""

pytest_plugins = ["cubestream.testing"]
