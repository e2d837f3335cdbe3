"""Enrichment: what a decoded upload says beyond its embeddings.

Speech (VAD + Whisper, ``speech``/``whisper_assets``), on-screen text (``ocr``) and the
policy review gate (``review``), run by :class:`~tagging.enrich.enricher.Enricher`.
"""
