"""An experiment: instructions per submission, counted by callgrind, not timed.

On a shared, busy 2-core machine CPU seconds per request move by 2-4x with the
neighbours' load; instruction counts do not. This runs one server under
``valgrind --tool=callgrind`` (instrumentation off until the measured window), sends a warm-up, then
counts the instructions the server executes for exactly N accepted
``POST /distance/?x=3&y=4`` from C concurrent clients::

    python -m bench.experiments.instructions --requests 2000
    python -m bench.experiments.instructions --target ceiling --requests 2000

``--target gateway`` is ``cargoctl gateway`` (or ``--gateway-cmd``); ``ceiling``
is the benchmark's raw aio-pika publisher, counted per confirmed publish
(``bench.experiments.publish_cost``'s aio-pika path, under callgrind). It is a
guide for comparing variants of one code path, not the benchmark: a rate
needs the real run (``bench.submit``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.submit import QUEUE_MAX_LENGTH, _bench_env
from bench.vhost import private_vhost

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TOTALS = re.compile(r"^(?:totals|summary):\s+(\d+)", re.MULTILINE)


def callgrind(outfile: Path, command: list[str]) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={outfile}", *command]


def control(pid: int, *flags: str) -> None:
    subprocess.run(["callgrind_control", *flags, str(pid)], check=True,
                   stdout=subprocess.DEVNULL)


def instructions(outfile: Path) -> int:
    # Every dump is a new file <out>.<n>; the measured window is the newest.
    dumps = sorted(outfile.parent.glob(outfile.name + ".*"), key=lambda p: p.stat().st_mtime)
    match = TOTALS.search(dumps[-1].read_text(errors="replace"))
    if match is None:
        raise RuntimeError(f"no totals in {dumps[-1]}")
    return int(match.group(1))


async def post_many(url: str, requests: int, concurrency: int) -> int:
    accepted = 0
    remaining = requests

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal accepted, remaining
        while remaining > 0:
            remaining -= 1
            async with session.post(url) as response:
                await response.read()
                accepted += response.status == 202

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return accepted


async def wait_ready(base: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                async with session.get(base + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("server not ready under callgrind")


async def count_gateway(env: dict[str, str], args: argparse.Namespace, out: Path) -> float:
    port = 18700 + os.getpid() % 200
    command = (shlex.split(args.gateway_cmd.format(host="127.0.0.1", port=port))
               if args.gateway_cmd else
               [str(VENV_BIN / "cargoctl"), "gateway", "--host", "127.0.0.1", "--port", str(port)])
    # Popen returns at once; the measured server must not share this loop.
    proc = subprocess.Popen(callgrind(out, command), env=env, cwd=ROOT,  # noqa: ASYNC220
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, proc, 180)
        url = base + "/distance/?x=3&y=4"
        await post_many(url, args.warmup, args.concurrency)
        control(proc.pid, "-i", "on")
        accepted = await post_many(url, args.requests, args.concurrency)
        control(proc.pid, "-d")
        control(proc.pid, "-i", "off")
        if accepted != args.requests:
            raise RuntimeError(f"only {accepted} of {args.requests} accepted")
        return instructions(out) / accepted
    finally:
        proc.terminate()
        proc.wait(60)


async def count_ceiling(env: dict[str, str], args: argparse.Namespace, out: Path) -> float:
    command = [sys.executable, "-c", _CEILING_SCRIPT, args.path, str(args.warmup),
               str(args.requests), str(args.concurrency), "uvloop" if args.uvloop else "asyncio"]
    proc = subprocess.Popen(callgrind(out, command), env=env, cwd=ROOT,  # noqa: ASYNC220
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    stdout = proc.stdout

    async def said(word: bytes) -> bytes:
        # Skip the log lines the publish paths print on stdout.
        while not (line := await loop.run_in_executor(None, stdout.readline)).startswith(word):
            if not line:
                raise RuntimeError(f"the publishing script exited before saying {word!r}")
        return line

    await said(b"warm")
    control(proc.pid, "-i", "on")
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    line = await said(b"done")
    control(proc.pid, "-d")
    proc.stdin.write(b"exit\n")
    proc.stdin.flush()
    proc.wait(120)
    return instructions(out) / int(line.split()[1])


# The ceiling's publish loop (the aio-pika path of publish_cost), paced by stdin
# so that only the measured publishes are counted.
_CEILING_SCRIPT = """
import asyncio, sys
from broker.settings import load_settings
from bench.experiments.publish_cost import PATHS, run_n

async def main(path, warmup, n, c):
    settings = load_settings()
    publish, close = await PATHS[path](settings, settings.task_queue)
    await run_n(publish, warmup, c)
    print("warm", flush=True)
    sys.stdin.readline()
    done = await run_n(publish, n, c)
    print("done", done, flush=True)
    sys.stdin.readline()
    await close()

if sys.argv[5] == "uvloop":
    import uvloop
    uvloop.install()
asyncio.run(main(sys.argv[1], *map(int, sys.argv[2:5])))
"""


async def main(args: argparse.Namespace) -> None:
    with private_vhost("cargo-bench") as vhost_settings:
        env = _bench_env(vhost_settings.rabbitmq_url)
        env["CARGO_QUEUE_MAX_LENGTH"] = str(QUEUE_MAX_LENGTH)
        # Under callgrind everything runs ~50x slower: a 1 s confirm timeout would
        # turn slow confirms into 503s.
        env["CARGO_PUBLISH_TIMEOUT"] = "60"
        with tempfile.TemporaryDirectory(prefix="cargo-callgrind-") as tmp:
            out = Path(tmp) / "callgrind.out"
            if args.target == "gateway":
                # The gateway declares the topology itself; the ceiling needs it declared.
                per = await count_gateway(env, args, out)
            else:
                subprocess.run(  # noqa: ASYNC221 - before anything is measured
                    [str(VENV_BIN / "cargoctl"), "topology", "declare"], env=env,
                    check=True, stdout=subprocess.DEVNULL)
                per = await count_ceiling(env, args, out)
    label = args.target if args.target == "gateway" else f"{args.path} publishes"
    print(f"{label}: {per:,.0f} instructions per accepted submission "
          f"({args.requests} requests, concurrency {args.concurrency})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("gateway", "ceiling"), default="gateway")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--path", choices=("aio-pika", "publisher"), default="aio-pika",
                        help="for --target ceiling: which publish path (default: the ceiling's)")
    parser.add_argument("--uvloop", action="store_true", help="for --target ceiling: on uvloop")
    parser.add_argument("--gateway-cmd", help="instead of `cargoctl gateway`; {host} {port}")
    asyncio.run(main(parser.parse_args()))
