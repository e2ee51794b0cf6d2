"""The Python package index (PEP 503/691 simple API) through the policy point."""
