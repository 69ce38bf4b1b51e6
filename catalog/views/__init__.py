"""Catalog pages, one module per kind of page (home, lists, details, lineage, search)."""
