"""An HTTP/3 client for the tests, on aioquic (its example client is not in the wheel).

    h3_client.py --connect 127.0.0.1:8443 --server-name a.test --ca ca.pem [--cert c --key k]
                 [--sequential] REQUESTS_JSON

REQUESTS_JSON is a list of requests, all sent on one QUIC connection (at once, or one after
another with --sequential). Each is {"method", "path", "headers": {..}, "body": "text"} or,
instead of "body", "upload_bytes": N: N bytes of the tests' pattern (byte i is i % 251),
streamed in 64 KiB chunks as flow control allows; with "pause_ms", the client waits that long
after its first chunk; with "abort_after_bytes", it resets the stream (H3_REQUEST_CANCELLED)
once it has sent that many bytes. Prints one JSON line per request, in order:
{"status", "headers": {name: value}, "length", "pattern": whether the body is the pattern,
"body": the text (bodies up to 64 KiB), "error": why it ended early}. Exits 1 when the
connection could not be made.
"""

import argparse
import asyncio
import json
import ssl
import sys

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.h3.connection import FrameUnexpected
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, StreamReset

CHUNK = 64 * 1024
PATTERN = bytes(i % 251 for i in range(251)) * 600
KEEP = 64 * 1024


def pattern(offset, length):
    out = bytearray()
    while length > 0:
        start = offset % 251
        n = min(length, len(PATTERN) - start)
        out += PATTERN[start : start + n]
        offset += n
        length -= n
    return bytes(out)


class Exchange:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.length = 0
        self.is_pattern = True
        self.kept = bytearray()
        self.error = None
        self.done = asyncio.get_running_loop().create_future()

    def data(self, chunk):
        if self.is_pattern and chunk != pattern(self.length, len(chunk)):
            self.is_pattern = False
        if len(self.kept) < KEEP:
            self.kept += chunk[: KEEP - len(self.kept)]
        self.length += len(chunk)

    def finish(self, error=None):
        if error and not self.error:
            self.error = error
        if not self.done.done():
            self.done.set_result(None)

    def result(self):
        out = {
            "status": self.status,
            "headers": self.headers,
            "length": self.length,
            "pattern": self.is_pattern and self.length > 0,
        }
        if self.length <= KEEP:
            out["body"] = self.kept.decode("utf-8", "replace")
        if self.error:
            out["error"] = self.error
        return out


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.exchanges = {}

    def quic_event_received(self, event):
        if isinstance(event, ConnectionTerminated):
            for exchange in self.exchanges.values():
                exchange.finish(f"connection closed: {event.reason_phrase or event.error_code}")
        if isinstance(event, StreamReset) and event.stream_id in self.exchanges:
            self.exchanges[event.stream_id].finish(f"stream reset: {event.error_code}")
        for h3_event in self.h3.handle_event(event):
            exchange = self.exchanges.get(getattr(h3_event, "stream_id", None))
            if exchange is None:
                continue
            if isinstance(h3_event, HeadersReceived):
                if exchange.status is None:
                    for name, value in h3_event.headers:
                        name, value = name.decode(), value.decode()
                        if name == ":status":
                            exchange.status = int(value)
                        elif name in exchange.headers:
                            exchange.headers[name] += ", " + value
                        else:
                            exchange.headers[name] = value
            elif isinstance(h3_event, DataReceived):
                exchange.data(h3_event.data)
            if getattr(h3_event, "stream_ended", False):
                exchange.finish()

    def sending(self, stream_id):
        stream = self._quic._streams.get(stream_id)
        return len(stream.sender._buffer) if stream is not None else 0

    async def request(self, spec, authority):
        stream_id = self._quic.get_next_available_stream_id()
        exchange = Exchange()
        self.exchanges[stream_id] = exchange
        headers = [
            (b":method", spec.get("method", "GET").encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", spec["path"].encode()),
        ]
        for name, value in spec.get("headers", {}).items():
            headers.append((name.lower().encode(), str(value).encode()))
        body = spec.get("body")
        upload = spec.get("upload_bytes")
        ends = body is None and upload is None
        self.h3.send_headers(stream_id, headers, end_stream=ends)
        self.transmit()
        if body is not None:
            self.h3.send_data(stream_id, body.encode(), end_stream=True)
            self.transmit()
        elif upload is not None:
            sent = 0
            pause = spec.get("pause_ms")
            abort = spec.get("abort_after_bytes")
            while sent < upload and not exchange.done.done():
                # Keep at most a few chunks queued: the sender follows flow control.
                while self.sending(stream_id) > 4 * CHUNK and not exchange.done.done():
                    await asyncio.sleep(0.002)
                n = min(CHUNK, upload - sent)
                ends = sent + n >= upload and abort is None
                try:
                    self.h3.send_data(stream_id, pattern(sent, n), end_stream=ends)
                except FrameUnexpected:
                    break  # the server stopped the upload (STOP_SENDING): it has answered
                self.transmit()
                sent += n
                if abort is not None and sent >= abort:
                    self._quic.reset_stream(stream_id, 0x10C)
                    self.transmit()
                    exchange.finish("aborted")
                    break
                if pause and sent == n:
                    await asyncio.sleep(pause / 1000)
                await asyncio.sleep(0)
        await exchange.done
        return exchange.result()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connect", required=True)
    parser.add_argument("--server-name", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--sequential", action="store_true")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("requests")
    args = parser.parse_args()
    specs = json.loads(args.requests)

    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=H3_ALPN,
        server_name=args.server_name,
        verify_mode=ssl.CERT_REQUIRED,
        max_data=64 * 1024 * 1024,
        max_stream_data=16 * 1024 * 1024,
    )
    configuration.load_verify_locations(args.ca)
    if args.cert:
        configuration.load_cert_chain(args.cert, args.key)
    host, port = args.connect.rsplit(":", 1)
    try:
        async with connect(
            host, int(port), configuration=configuration, create_protocol=Client
        ) as client:
            authority = args.server_name
            if args.sequential:
                results = []
                for spec in specs:
                    results.append(
                        await asyncio.wait_for(client.request(spec, authority), args.timeout)
                    )
            else:
                results = await asyncio.wait_for(
                    asyncio.gather(*(client.request(s, authority) for s in specs)),
                    args.timeout,
                )
    except (ConnectionError, asyncio.TimeoutError, OSError) as e:
        print(json.dumps({"connect_error": repr(e)}), flush=True)
        sys.exit(1)
    for result in results:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
