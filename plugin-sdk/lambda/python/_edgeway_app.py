"""Edgeway's adapter for AWS Lambda handlers written in Python (world
`edgeway:plugin/lambda@0.1.0`): it exports `invoke` and calls the user's handler the way AWS
Lambda's Python runtime does,

    def handler(event, context):
        return {"statusCode": 200, "body": "..."}

build.sh copies the user's file in as the module `lambda_function` and names the handler in
`_edgeway_handler.py`. The event arrives as JSON text and is parsed; the handler's result is
written as JSON (an `async def` handler is run to completion). An exception fails the call with
its message: behind an `aws-proxy-*` integration that is API Gateway's 502, from an authorizer
a 500, or a 401 when the message is exactly `Unauthorized`.
"""

import asyncio
import inspect
import json
import time

import wit_world
from componentize_py_types import Err

import _edgeway_handler
import lambda_function


class LambdaContext:
    """The parts of AWS Lambda's `context` object Edgeway can give."""

    def __init__(self, request_id: str, function_name: str, remaining_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = ""
        self.memory_limit_in_mb = None
        self.log_group_name = ""
        self.log_stream_name = ""
        self._deadline = time.monotonic() + remaining_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class WitWorld(wit_world.WitWorld):
    def invoke(self, event: str, context) -> str:
        handler = getattr(lambda_function, _edgeway_handler.NAME, None)
        if not callable(handler):
            raise Err(f"the module has no function named {_edgeway_handler.NAME}")
        ctx = LambdaContext(context.request_id, context.function_name, context.remaining_ms)
        try:
            result = handler(json.loads(event), ctx)
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
            return json.dumps(result)
        except Err:
            raise
        except Exception as error:  # the function "throws": its message is the error
            raise Err(str(error) or type(error).__name__)
