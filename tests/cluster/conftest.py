"""Fixtures of the cluster tests: the session's local SLURM comes from cluster.testing."""

from cluster.testing import local_slurm

__all__ = ["local_slurm"]
