"""Cargo's Celery side: the task catalog, the Celery app, lifecycle events, the runner.

``workers.catalog`` and ``workers.tasks`` are pure (no Celery import), so the
gateway can validate submissions against the catalog without loading Celery.
"""
