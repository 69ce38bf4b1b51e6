"""Feast's feature-server endpoints: /get-online-features, /push, /write-to-online-store."""
