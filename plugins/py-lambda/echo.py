"""A Lambda-style handler of API Gateway proxy events, written as for AWS Lambda's Python
runtime and built for Edgeway with plugin-sdk/lambda/python/build.sh. It behaves as the Rust
plugins/lambda-echo does (see there), with "lang": "python"."""

import json


def handler(event, context):
    query = event.get("queryStringParameters") or {}
    shape = query.get("shape")
    if shape == "binary":
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": "AAEC/v8=",
            "isBase64Encoded": True,
        }
    if shape == "bare":
        return {"bare": True, "lang": "python"}
    if shape == "garbage":
        return {"statusCode": "soon", "unexpected": True}
    if shape == "throw":
        raise RuntimeError("boom")
    response = {
        "statusCode": int(query.get("status", "200")),
        "headers": {"content-type": "application/json", "x-lang": "python"},
        "multiValueHeaders": {"x-multi": ["one", "two"]},
        "body": json.dumps(
            {
                "lang": "python",
                "event": event,
                "context": {
                    "awsRequestId": context.aws_request_id,
                    "functionName": context.function_name,
                    "hasTime": context.get_remaining_time_in_millis() > 0,
                },
            }
        ),
        "isBase64Encoded": False,
    }
    if event.get("version") == "2.0":
        response["cookies"] = ["session=abc; Path=/", "theme=dark"]
    return response
