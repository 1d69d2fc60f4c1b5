"""Where a gateway spends its CPU: py-spy raw samples grouped into the request's stages.

``python -m bench.pyspy_summary FILE`` reads what ``bench.submit --profile``
writes (``py-spy record --format raw``: one folded stack and a count a line)
and prints the share of samples per stage. Each sample goes to the first stage
(in the order below) one of whose markers appears in its stack, looking only
at the frames from the event loop's callback down, so the start-up frames
every stack shares (click, ``run_app``) do not match. A resumed coroutine's
stack may start below the frame that names its purpose, so part of the AMQP
client's time cannot be told apart between the task and the event publish.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("queued event: publish (_announce, publish_event)", ("_announce", "publish_event")),
    ("queued event: consume from the events stream",
     ("EventsReader", "IncomingMessage", "consumer (aio_pika/queue", "Hub.")),
    ("task publish (aio-pika Message, aiormq basic_publish, pamqp)", ("publish_task",)),
    ("AMQP frames in (confirms, deliveries)",
     ("Connection.__reader", "FrameReceiver", "Channel._reader", "_confirm_delivery")),
    ("AMQP frames out (connection writer)", ("Connection.__writer",)),
    ("encode_task", ("encode_task",)),
    ("argument validation", ("validate", "BaseModel", "pydantic")),
    ("metrics", ("observe_submission", "prometheus_client")),
    ("task store", ("TaskStore", "store.py")),
    ("JSON response", ("json_response",)),
    ("rest of the handler and middlewares",
     ("submit (gateway", "distance (gateway", "middleware")),
    ("AMQP client, not attributable to one publish (aio-pika, aiormq, pamqp)",
     ("aiormq/", "aio_pika/", "pamqp/")),
    ("aiohttp: HTTP parsing, routing, writing", ("aiohttp/",)),
    ("event loop, selectors, sockets", ("asyncio/", "selectors.py", "uvloop")),
)
LOOP_STAGE = STAGES[-1][0]
LOOP_FRAMES = ("Handle._run ", "BaseEventLoop._run_once ")


def summarize(path: Path) -> tuple[Counter[str], int]:
    shares: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        cut = [i for i, f in enumerate(frames) if f.startswith(LOOP_FRAMES)]
        if cut:
            frames = frames[cut[-1] + 1:]
        if not frames or frames == [""]:
            shares[LOOP_STAGE] += n  # in the event loop itself
            continue
        for stage, markers in STAGES:
            if any(marker in frame for frame in frames for marker in markers):
                shares[stage] += n
                break
        else:
            shares["other"] += n
    return shares, total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pyspy_summary", description=__doc__)
    parser.add_argument("file", type=Path, help="py-spy raw output (bench.submit --profile)")
    args = parser.parse_args(argv)
    shares, total = summarize(args.file)
    if not total:
        raise SystemExit(f"{args.file}: no samples")
    print("| stage | share of samples |\n| --- | ---: |")
    for stage, n in shares.most_common():
        print(f"| {stage} | {100 * n / total:.1f} % |")
    print(f"\n{total} samples")


if __name__ == "__main__":
    main()
