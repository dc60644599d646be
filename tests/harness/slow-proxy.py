#!/usr/bin/python3
"""A TCP proxy that slows every connection's download to RATE bytes/s.

    slow-proxy.py LISTEN_PORT TARGET_PORT RATE     (both on 127.0.0.1)

tests/e2e_prepare.rs puts it between dockerd and the local registry so that pulls take
seconds. Each connection is limited on its own (a registry or CDN limiting each
download), not the link as a whole as `tc tbf` on lo would: that makes "the slowest
single pull" the bound a parallel boot can reach, which is what the test measures.
Pacing is by a per-connection clock, so an idle keep-alive connection earns no burst.
"""
import asyncio
import sys
import time

LISTEN, TARGET, RATE = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
CHUNK = 16384


async def pipe(reader, writer, rate=None):
    due = time.monotonic()
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            if rate:
                due = max(due, time.monotonic()) + len(data) / rate
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_r, client_w):
    try:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", TARGET)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w, RATE))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    async with server:
        await server.serve_forever()


asyncio.run(main())
