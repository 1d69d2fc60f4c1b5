"""Image chores on the default queue: one typed task, one legacy untyped one, one long one."""

from __future__ import annotations

import time
from typing import Literal

from celery import shared_task


@shared_task
def thumbnail(url: str, width: int = 128, fmt: Literal["png", "jpeg"] = "png") -> dict[str, object]:
    """Describe the thumbnail of the image at ``url`` (a stand-in: no network here).

    Typed: Cargo's gateway answers 422 for a ``width`` that is not an integer or
    a ``fmt`` other than png/jpeg, before anything is queued.
    """
    name = url.rstrip("/").rsplit("/", 1)[-1] or "image"
    return {"thumbnail": f"{name}.{width}.{fmt}", "width": width}


@shared_task
def legacy_add(a, b):  # written before type hints
    """Add two things, the way it always has: any JSON values go through."""
    return a + b


@shared_task(bind=True)
def reindex(self, documents: int, batch: int = 10) -> int:
    """Reindex ``documents`` in batches, reporting progress as Celery tasks do."""
    done = 0
    while done < documents:
        time.sleep(0.05)
        done = min(documents, done + batch)
        self.update_state(state="PROGRESS", meta={"done": done, "total": documents})
    return done
