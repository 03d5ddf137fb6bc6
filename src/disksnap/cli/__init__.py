"""Command line: the ``disksnap`` entry point."""
