"""The LanceDB store: the ``videos`` catalog, its writer, and the ``interactions`` and ``failures`` tables."""
