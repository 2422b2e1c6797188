"""A WebSocket client built on the `websockets` package, for tests/tests/websocket.rs.

Usage: ws_client.py URL SUBPROTOCOL MESSAGE...
Opens URL offering SUBPROTOCOL (or none when it is "-"), sends each MESSAGE and waits for
one reply to each, then closes normally. Prints one JSON object: the subprotocol the server
chose and the replies, in order.
"""

import json
import sys

from websockets.sync.client import connect


def main():
    url, subprotocol, *messages = sys.argv[1:]
    subprotocols = None if subprotocol == "-" else [subprotocol]
    replies = []
    with connect(url, subprotocols=subprotocols, open_timeout=5, close_timeout=5) as ws:
        for message in messages:
            ws.send(message)
            replies.append(ws.recv(timeout=5))
        chosen = ws.subprotocol
    print(json.dumps({"subprotocol": chosen, "replies": replies}))


if __name__ == "__main__":
    main()
