"""The canary: one real task through the gateway, as a client runs it.

Opens a WebSocket, submits ``calculate_distance`` over REST, subscribes to the
task id (the gateway first sends the task's latest event, so nothing is missed
between the 202 and the subscription) and waits for its terminal event within
the timeout. The outcome is checked: it must succeed with the right distance.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

TASK = "calculate_distance"
TERMINAL = ("succeeded", "dead_lettered", "revoked")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    seconds: float
    message: str  # one line


async def run_canary(gateway: str, timeout: float, token: str | None = None) -> Outcome:
    """Run one canary check; never raises, the reason is in the outcome."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            message = await _check(gateway.rstrip("/"), token)
    except TimeoutError:
        return Outcome(False, time.monotonic() - started,
                       f"no result from {TASK} within {timeout:g}s")
    except CanaryFailure as exc:
        return Outcome(False, time.monotonic() - started, str(exc))
    except (aiohttp.ClientError, OSError) as exc:
        return Outcome(False, time.monotonic() - started,
                       f"cannot reach the gateway at {gateway}: {type(exc).__name__}: {exc}")
    return Outcome(True, time.monotonic() - started, message)


class CanaryFailure(Exception):
    pass


async def _check(gateway: str, token: str | None) -> str:
    x, y = random.randint(1, 1000), random.randint(1, 1000)
    expected = math.hypot(x, y)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ws_url = gateway.replace("http", "ws", 1) + "/ws"
    async with aiohttp.ClientSession(headers=headers) as http, http.ws_connect(ws_url) as ws:
        async with http.post(f"{gateway}/tasks/{TASK}", json={"args": [x, y]}) as resp:
            body: Any = await resp.json(content_type=None)
            if resp.status != 202:
                code = (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None
                raise CanaryFailure(f"submit answered {resp.status} {code or ''}".rstrip())
            task_id = str(body["task_id"])
        await ws.send_json({"op": "subscribe", "task_ids": [task_id]})
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise CanaryFailure(f"WebSocket closed before the result ({frame.type.name})")
            event = json.loads(frame.data)
            if event.get("type") != "event" or event.get("task_id") != task_id:
                continue
            state = event.get("state")
            if state not in TERMINAL:
                continue
            if state != "succeeded":
                raise CanaryFailure(f"{TASK} {task_id} ended {state}"
                                    f" ({event.get('reason') or event.get('error')})")
            result = event.get("result")
            if not isinstance(result, int | float) or not math.isclose(result, expected,
                                                                         rel_tol=1e-9):
                raise CanaryFailure(f"{TASK}({x}, {y}) returned {result!r}, not {expected}")
            return f"{TASK}({x}, {y}) = {result:g}"
    raise CanaryFailure("WebSocket closed before the result")
