"""The `@connections` API through boto3's `apigatewaymanagementapi` client, as a backend calls
it, for tests/tests/websocket.rs.

Usage: connections_client.py ENDPOINT REGION ACCESS_KEY SECRET_KEY CONNECTION_ID
ENDPOINT is the stage's URL (http://127.0.0.1:PORT/prod). Posts a message, gets the
connection, deletes it, then posts again; prints one JSON object with what each call gave
(a status, or the error code boto3 read).
"""

import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def main():
    endpoint, region, access_key, secret_key, connection_id = sys.argv[1:]
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 1}),
    )
    out = {}

    def call(name, fn):
        try:
            response = fn()
            out[name] = {"status": response["ResponseMetadata"]["HTTPStatusCode"]}
            if "Identity" in response:
                out[name]["sourceIp"] = response["Identity"]["SourceIp"]
        except ClientError as e:
            out[name] = {
                "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                "error": e.response["Error"]["Code"],
            }

    call("post", lambda: client.post_to_connection(ConnectionId=connection_id, Data=b"from boto3"))
    call("get", lambda: client.get_connection(ConnectionId=connection_id))
    call("delete", lambda: client.delete_connection(ConnectionId=connection_id))
    call("post_after", lambda: client.post_to_connection(ConnectionId=connection_id, Data=b"late"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
