"""Batch backfill of a catalog: sources, URL fetch, plan/run (local pool) and the Ray Data engine."""
