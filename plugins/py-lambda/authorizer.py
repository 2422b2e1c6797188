"""A Lambda authorizer returning an IAM policy, written as for AWS Lambda's Python runtime and
built for Edgeway with plugin-sdk/lambda/python/build.sh. It behaves as the Rust
plugins/lambda-authorizer does (see there)."""


def _policy(effect, resource):
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
    }


def handler(event, context):
    token = event.get("authorizationToken") or (event.get("headers") or {}).get("authorization", "")
    method_arn = event.get("methodArn", "")
    prefix, _, rest = method_arn.rpartition(":")
    api_stage = "/".join(rest.split("/")[:2])
    if token == "allow":
        return {
            "principalId": "user-allow",
            "policyDocument": _policy("Allow", f"{prefix}:{api_stage}/GET/*"),
            "context": {"tier": "gold", "count": 3, "vip": True, "arn": method_arn},
            "usageIdentifierKey": "k-lambda",
        }
    if token == "deny":
        return {"principalId": "user-deny", "policyDocument": _policy("Deny", method_arn)}
    if token == "unauthorized":
        raise Exception("Unauthorized")
    if token == "broken":
        return {
            "principalId": "user-broken",
            "policyDocument": {"Statement": [{"Action": "execute-api:Invoke", "Resource": "*"}]},
        }
    raise Exception("invalid token")
