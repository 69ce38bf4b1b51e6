"""Historical retrieval over HTTP: POST /api/v1/historical-features (training sets,
sync or as Celery jobs), the job model, saved datasets, result formats.

The point-in-time join itself is serving.offline's; this package resolves the request
against the registry, passes the gate, and moves rows in and out.
"""
