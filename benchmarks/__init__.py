"""Throughput benchmarks of every cubestream stage."""
