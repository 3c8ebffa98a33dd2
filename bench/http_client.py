"""CPU per send request: the bulk funnel's keep-alive pool against aiohttp, on the local WeChat stub.

    .venv/bin/python bench/http_client.py              # 20000 POSTs, 128 in flight, stub round trip 30 ms
    .venv/bin/pip install aiohttp                      # optional: adds aiohttp's line for comparison

Each client POSTs a subscribe-message body to ``bench/wechat_stub.py`` (its own process) and parses the
JSON answer, ``--concurrency`` requests in flight from one asyncio loop, and reports requests per second
and its own CPU time per request. The stub shares the machine's cores. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATH = "/cgi-bin/message/subscribe/send?access_token=BENCH"
CONTENT_TYPE = "application/json; charset=utf-8"


def body(i: int) -> bytes:
    return json.dumps(
        {
            "touser": f"obench{i:08d}",
            "template_id": "TBENCH",
            "data": {"thing1": {"value": "您的订单已发货"}},
        },
        ensure_ascii=False,
    ).encode()


async def measure(post, n: int, concurrency: int) -> tuple[float, float]:
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with limit:
            reply = json.loads(await post(body(i)))
            assert reply["errcode"] == 0

    wall, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.monotonic() - wall, time.process_time() - cpu


async def keepalive_pool(base: str, n: int, concurrency: int) -> tuple[float, float]:
    from dashboard.wechat.keepalive import KeepAlivePool

    # env={}: the stub is on loopback; a proxy in the shell's environment must not carry the bench.
    pool = KeepAlivePool(base, limit=concurrency, connect_timeout=3.05, read_timeout=10.0, env={})

    async def post(payload: bytes) -> bytes:
        return (await pool.post(PATH, payload, CONTENT_TYPE)).body

    try:
        return await measure(post, n, concurrency)
    finally:
        pool.close()


async def aiohttp_session(base: str, n: int, concurrency: int) -> tuple[float, float]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def post(payload: bytes) -> bytes:
            async with session.post(
                base + PATH, data=payload, headers={"Content-Type": CONTENT_TYPE}
            ) as reply:
                return await reply.read()

        return await measure(post, n, concurrency)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stub = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [
            sys.executable,
            str(ROOT / "bench" / "wechat_stub.py"),
            "--port",
            str(port),
            "--latency-ms",
            str(args.latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    stub.stdout.readline()  # "stub listening ..."
    base = f"http://127.0.0.1:{port}"
    clients = [("Tongzhi keep-alive pool (dashboard/wechat/keepalive.py)", keepalive_pool)]
    try:
        import aiohttp

        clients.append((f"aiohttp {aiohttp.__version__} ClientSession", aiohttp_session))
    except ImportError:
        print("aiohttp is not installed: its line is left out (pip install aiohttp to compare)")
    try:
        rows = [(name, asyncio.run(run(base, args.n, args.concurrency))) for name, run in clients]
    finally:
        stub.terminate()
        stub.wait(timeout=10)
    print(f"command: python bench/http_client.py {' '.join(sys.argv[1:])}".rstrip())
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, stub round trip {args.latency_ms:g} ms"
    )
    print()
    print("| client | requests | in flight | req/s | CPU ms/request |")
    print("|---|---:|---:|---:|---:|")
    for name, (wall, cpu) in rows:
        print(f"| {name} | {args.n} | {args.concurrency} | {args.n / wall:.0f} | {cpu / args.n * 1000:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
