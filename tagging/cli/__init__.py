"""The ``tagging`` command line: ``main`` (entry point), shared ``options``, ``tags`` and ``serve`` commands."""
