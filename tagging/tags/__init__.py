"""Tagging: taxonomy, zero-shot tagger with sub-topics, trained tag heads and evaluation."""
