"""ACME's Celery tasks: ordinary ``@shared_task`` functions, written for Celery.

Nothing here imports Cargo. A Cargo worker loads these modules when
``CARGO_TASK_MODULES`` names them (see this project's README).
"""
