"""Cargo's Celery side: the app that loads a team's task modules, the catalog it announces,
lifecycle events, dead-lettering, the memory guard, worker health, the runner.

A team's tasks (``CARGO_TASK_MODULES``, ``workers.modules``) are ordinary
``@shared_task`` functions; ``workers.base`` gives every one Cargo's behaviour
and ``workers.announce`` publishes what they accept. ``workers.tasks`` holds the
built-in tasks' plain functions (``workers.builtin`` registers them).
"""
