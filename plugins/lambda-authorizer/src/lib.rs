//! A Lambda authorizer in the shape of API Gateway's reference example, the Rust one of three
//! that behave alike (`plugins/js-lambda/authorizer.mjs`, `plugins/py-lambda/authorizer.py`).
//! It reads the token (`authorizationToken` of a TOKEN event, else the `authorization`
//! header of a REQUEST event):
//!
//! - `allow`: principal `user-allow`, an Allow policy for `GET` on every path of the stage
//!   (`{api}/{stage}/GET/*`, built from the `methodArn` it was given), context
//!   `{"tier": "gold", "count": 3, "vip": true, "arn": METHOD_ARN}`, usage key `k-lambda`;
//! - `deny`: an explicit Deny on the method ARN it was given;
//! - `unauthorized`: the function fails with `Unauthorized` (a 401);
//! - `broken`: a policy without `Effect` (malformed: a 500);
//! - anything else: fails with `invalid token` (a 500).

use edgeway_plugin_sdk::{Error, Lambda, LambdaContext, export_lambda};
use serde_json::{Value, json};

struct Gate;

fn policy(effect: &str, resource: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Action": "execute-api:Invoke", "Effect": effect, "Resource": resource }],
    })
}

impl Lambda for Gate {
    fn new() -> Result<Self, Error> {
        Ok(Gate)
    }

    fn invoke(&self, event: Value, _context: &LambdaContext) -> Result<Value, Error> {
        let token = event["authorizationToken"]
            .as_str()
            .or_else(|| event["headers"]["authorization"].as_str())
            .unwrap_or_default();
        let method_arn = event["methodArn"].as_str().unwrap_or_default();
        // arn:aws:execute-api:region:account:api/stage/METHOD/path: keep `api/stage`.
        let (prefix, rest) = method_arn.rsplit_once(':').unwrap_or_default();
        let api_stage: Vec<&str> = rest.splitn(3, '/').take(2).collect();
        match token {
            "allow" => Ok(json!({
                "principalId": "user-allow",
                "policyDocument": policy("Allow", &format!("{prefix}:{}/GET/*", api_stage.join("/"))),
                "context": { "tier": "gold", "count": 3, "vip": true, "arn": method_arn },
                "usageIdentifierKey": "k-lambda",
            })),
            "deny" => Ok(json!({
                "principalId": "user-deny",
                "policyDocument": policy("Deny", method_arn),
            })),
            "unauthorized" => Err(Error::msg("Unauthorized")),
            "broken" => Ok(json!({
                "principalId": "user-broken",
                "policyDocument": { "Statement": [{ "Action": "execute-api:Invoke", "Resource": "*" }] },
            })),
            _ => Err(Error::msg("invalid token")),
        }
    }
}

export_lambda!(Gate);
