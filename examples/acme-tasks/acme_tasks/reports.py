"""Reports: their own queue and worker pool, with a tighter memory limit."""

from __future__ import annotations

from celery import shared_task


# queue, time_limit and max_retries are Celery's own options; cargo_memory_limit_mb
# is Cargo's (plain Celery ignores it): past 64 MiB of growth the task is stopped
# and dead-lettered with reason memory_limit.
@shared_task(queue="reports", time_limit=120, max_retries=1, cargo_memory_limit_mb=64)
def monthly_report(month: str, rows: int = 1000) -> dict[str, object]:
    """Summarise ``rows`` rows of ``month`` (YYYY-MM)."""
    if len(month) != 7 or month[4] != "-":
        raise ValueError(f"month must look like 2026-11, not {month!r}")
    return {"month": month, "rows": rows, "total": rows * (rows + 1) // 2}
