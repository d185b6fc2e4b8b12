"""Test helpers for the trainers: the synthetic L2 data module (:mod:`trainers.synthetic_data`)."""

from trainers.synthetic_data import L2SampleDataset, SyntheticL2DataModule

__all__ = ["L2SampleDataset", "SyntheticL2DataModule"]
