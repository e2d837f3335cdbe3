"""Benchmarks of CB2CF: the MovieLens loader and the cold-item benchmark with its baselines."""
