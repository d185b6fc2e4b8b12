"""Launching cubestream on clusters: dask-jobqueue profiles and sbatch/PBS training jobs."""
