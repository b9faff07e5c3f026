"""The command-line interface: a thin Click layer over :mod:`adaptvc.api`.

Each command parses its arguments, calls one API function and prints the result
(human-readable, or one JSON document with ``--json``). Errors are rendered in one
place, :func:`adaptvc.cli.main.main`.
"""
