"""Integrations with training frameworks. Import the one you use, e.g.
``from adaptvc.integrations.transformers import AdaptvcCallback``."""
