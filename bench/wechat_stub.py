"""A fast local stand-in for WeChat's send API, for benchmarks only (not the sandbox: no rules, no ledger).

Answers ``POST /cgi-bin/stable_token`` and ``POST /cgi-bin/message/subscribe/send`` after a fixed
simulated round trip, on HTTP/1.1 keep-alive, from one asyncio loop so the stub itself costs little
CPU. ``GET /stats`` returns the counters. Loopback only.

    python bench/wechat_stub.py --port 5099 --latency-ms 30
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json

COUNTS = {"send": 0, "token": 0, "other": 0}
MSGIDS = itertools.count(3_000_000_000_000)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            length = 0
            for line in header_lines:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if length:
                await reader.readexactly(length)
            path = target.split("?", 1)[0]
            if path == "/cgi-bin/message/subscribe/send":
                COUNTS["send"] += 1
                await asyncio.sleep(latency)
                body = {"errcode": 0, "errmsg": "ok", "msgid": next(MSGIDS)}
            elif path == "/cgi-bin/stable_token":
                COUNTS["token"] += 1
                await asyncio.sleep(latency)
                body = {"access_token": "STUB_TOKEN_" + "x" * 100, "expires_in": 7200}
            elif path == "/stats":
                body = dict(COUNTS)
            else:
                COUNTS["other"] += 1
                body = {"errcode": 40001, "errmsg": "stub knows only send and stable_token"}
            payload = json.dumps(body).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port: int, latency_ms: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, latency_ms / 1000), "127.0.0.1", port, backlog=1024
    )
    print(f"stub listening on 127.0.0.1:{port} latency {latency_ms} ms", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.latency_ms))
