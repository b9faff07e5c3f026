"""The versioning operations: init, save, log/show/status, checkout/export/resolve, alias.

Each module holds one concern; :mod:`adaptvc.api` exposes them. None imports torch or
``dvc.repo`` at top level.
"""
