//! Lambda authorizers (reference §4): the input API Gateway gives a TOKEN or REQUEST
//! authorizer, the IAM policy it returns, and that policy evaluated against the request's
//! method ARN as AWS evaluates it.
//!
//! A policy is cached per identity and evaluated against each request's own method ARN, as
//! API Gateway does: a cached policy that names only the first method denies the others for
//! the cache's TTL ("your authorizer must return a policy that is applicable to all methods").
//!
//! Evaluation follows IAM: an explicit Deny that matches wins, then an Allow that matches,
//! else the request is denied. `Action` and `Resource` may be a string or a list; `*` matches
//! any run of characters (`/` included) and `?` one; actions match without regard to case,
//! resources with it. A statement with a `Condition` cannot be evaluated here (there are no
//! IAM condition keys at the edge): as an Allow it never matches, as a Deny it always does,
//! so a condition can only make Edgeway stricter than AWS, never looser.

use serde_json::{Map, Value, json};

use super::event::{EventRequest, event_v1};

/// Which input the authorizer is given (`type` of a `lambda` authorizer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizerInput {
    /// `{type: TOKEN, authorizationToken, methodArn}`: the one identity source's value.
    Token,
    /// The REST REQUEST input: headers, query, path and stage variables, request context.
    Request,
}

/// What a method ARN is made of besides the request: `arn:aws:execute-api:{region}:
/// {account}:{api}/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub region: String,
    pub account_id: String,
    /// The API id; the API's name when not configured.
    pub api_id: Option<String>,
}

impl ArnScope {
    /// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`, the path
    /// without its leading slash (the root is `.../GET/`).
    pub fn method_arn(&self, api: &str, stage: &str, method: &str, route_path: &str) -> String {
        format!(
            "arn:aws:execute-api:{}:{}:{}/{stage}/{method}/{}",
            self.region,
            self.account_id,
            self.api_id.as_deref().unwrap_or(api),
            route_path.strip_prefix('/').unwrap_or(route_path)
        )
    }
}

/// The TOKEN input.
pub fn token_event(token: &str, method_arn: &str) -> Value {
    json!({ "type": "TOKEN", "authorizationToken": token, "methodArn": method_arn })
}

/// The REQUEST input: the 1.0 proxy event's request fields (no body), with `type` and
/// `methodArn`.
pub fn request_event(request: &EventRequest<'_>, method_arn: &str) -> Value {
    let mut event = event_v1(request);
    if let Value::Object(fields) = &mut event {
        for gone in ["version", "body", "isBase64Encoded"] {
            fields.remove(gone);
        }
        let mut out = Map::with_capacity(fields.len() + 2);
        out.insert("type".into(), "REQUEST".into());
        out.insert("methodArn".into(), method_arn.into());
        out.append(fields);
        return Value::Object(out);
    }
    event
}

/// What an authorizer returned, checked: who the caller is, and what they may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub principal_id: String,
    pub policy: Policy,
    /// `context`, each value as text (API Gateway stringifies numbers and booleans).
    pub context: Vec<(String, String)>,
    /// `usageIdentifierKey`: the API key whose usage plan the request counts against.
    pub usage_key: Option<String>,
}

/// An IAM policy document's statements about `execute-api`.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    conditional: bool,
}

/// A policy's answer for one method ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// A Deny statement matched.
    ExplicitDeny,
    /// No statement allowed it.
    ImplicitDeny,
}

/// Why an authorizer's output is not one API Gateway accepts (a 500 to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedPolicy {
    #[error("the output is not JSON: {0}")]
    NotJson(String),
    #[error("the output is not a JSON object")]
    NotAnObject,
    #[error("`principalId` is missing or not a string")]
    Principal,
    #[error("`policyDocument` is missing or has no `Statement`")]
    NoPolicy,
    #[error("statement {0}: {1}")]
    Statement(usize, &'static str),
    #[error("context `{0}`: a value must be a string, number or boolean")]
    ContextValue(String),
    #[error("`context` is not an object")]
    Context,
    #[error("`usageIdentifierKey` is not a string")]
    UsageKey,
}

/// Checks what an authorizer returned (§4.5).
pub fn parse_grant(output: &[u8]) -> Result<Grant, MalformedPolicy> {
    let value: Value =
        serde_json::from_slice(output).map_err(|e| MalformedPolicy::NotJson(e.to_string()))?;
    let Value::Object(mut fields) = value else {
        return Err(MalformedPolicy::NotAnObject);
    };
    let principal_id = match fields.remove("principalId") {
        Some(Value::String(id)) => id,
        _ => return Err(MalformedPolicy::Principal),
    };
    let policy = parse_policy(fields.remove("policyDocument"))?;
    let context = match fields.remove("context") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Number(n) => Ok((k, n.to_string())),
                Value::Bool(b) => Ok((k, b.to_string())),
                _ => Err(MalformedPolicy::ContextValue(k)),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(MalformedPolicy::Context),
    };
    let usage_key = match fields.remove("usageIdentifierKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key),
        Some(_) => return Err(MalformedPolicy::UsageKey),
    };
    Ok(Grant {
        principal_id,
        policy,
        context,
        usage_key,
    })
}

fn parse_policy(document: Option<Value>) -> Result<Policy, MalformedPolicy> {
    let Some(Value::Object(mut document)) = document else {
        return Err(MalformedPolicy::NoPolicy);
    };
    let statements = match document.remove("Statement") {
        Some(Value::Array(list)) => list,
        // A single statement may be written without the list.
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err(MalformedPolicy::NoPolicy),
    };
    let statements = statements
        .into_iter()
        .enumerate()
        .map(|(i, statement)| {
            parse_statement(statement).map_err(|why| MalformedPolicy::Statement(i, why))
        })
        .collect::<Result<_, _>>()?;
    Ok(Policy { statements })
}

fn parse_statement(statement: Value) -> Result<Statement, &'static str> {
    let Value::Object(fields) = statement else {
        return Err("not an object");
    };
    if fields.contains_key("NotAction") || fields.contains_key("NotResource") {
        return Err("NotAction and NotResource are not supported; name what is allowed or denied");
    }
    let allow = match fields.get("Effect").and_then(Value::as_str) {
        Some("Allow") => true,
        Some("Deny") => false,
        _ => return Err("`Effect` must be Allow or Deny"),
    };
    let strings = |key: &str| -> Option<Vec<String>> {
        match fields.get(key)? {
            Value::String(one) => Some(vec![one.clone()]),
            Value::Array(list) => list.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => None,
        }
    };
    let actions = strings("Action").ok_or("`Action` must be a string or a list of strings")?;
    let resources =
        strings("Resource").ok_or("`Resource` must be a string or a list of strings")?;
    Ok(Statement {
        allow,
        actions,
        resources,
        conditional: fields.contains_key("Condition"),
    })
}

impl Policy {
    /// The policy's answer for invoking `method_arn`.
    pub fn evaluate(&self, method_arn: &str) -> Verdict {
        let applies = |s: &Statement| {
            s.actions
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), "execute-api:invoke"))
                && s.resources.iter().any(|r| glob(r, method_arn))
        };
        if self
            .statements
            .iter()
            .any(|s| !s.allow && (s.conditional || applies(s)))
        {
            return Verdict::ExplicitDeny;
        }
        if self
            .statements
            .iter()
            .any(|s| s.allow && !s.conditional && applies(s))
        {
            return Verdict::Allow;
        }
        Verdict::ImplicitDeny
    }
}

/// IAM's wildcard match: `*` is any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // The classic two-pointer match with backtracking to the last `*`: linear in practice,
    // O(p·t) at worst, no allocation beyond the char vectors.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/dev/GET/pets/7";

    fn grant(statements: Value) -> Grant {
        parse_grant(
            json!({ "principalId": "u", "policyDocument": { "Version": "2012-10-17", "Statement": statements } })
                .to_string()
                .as_bytes(),
        )
        .expect("a well-formed grant")
    }

    fn allow(resource: Value) -> Value {
        json!([{ "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource }])
    }

    #[test]
    fn the_arn_names_region_account_api_stage_method_and_path() {
        let scope = ArnScope {
            region: "us-west-2".into(),
            account_id: "123456789012".into(),
            api_id: Some("ymy8tbxw7b".into()),
        };
        assert_eq!(scope.method_arn("pets", "dev", "GET", "/pets/7"), ARN);
        assert_eq!(
            scope.method_arn("pets", "dev", "GET", "/"),
            "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/dev/GET/"
        );
        let unnamed = ArnScope {
            api_id: None,
            ..scope
        };
        assert!(
            unnamed
                .method_arn("pets", "dev", "GET", "/")
                .contains(":pets/dev/GET/")
        );
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        for (pattern, matches) in [
            ("arn:aws:execute-api:*:*:*", true),
            ("arn:aws:execute-api:us-west-2:*:ymy8tbxw7b/*", true),
            ("arn:aws:execute-api:us-west-2:*:ymy8tbxw7b/dev/*", true),
            (
                "arn:aws:execute-api:us-west-2:*:ymy8tbxw7b/*/GET/pets/*",
                true,
            ),
            (
                "arn:aws:execute-api:us-west-2:*:ymy8tbxw7b/*/GET/pets/?",
                true,
            ),
            (
                "arn:aws:execute-api:us-west-2:*:ymy8tbxw7b/*/GET/pets",
                false,
            ),
            ("arn:aws:execute-api:us-west-2:*:ymy8tbxw7b/*/POST/*", false),
            ("arn:aws:execute-api:us-west-2:*:ymy8tbxw7b/prod/*", false),
            ("arn:aws:execute-api:us-east-1:*:*", false),
            ("ARN:aws:execute-api:*", false),
            ("*", true),
        ] {
            assert_eq!(
                grant(allow(json!(pattern))).policy.evaluate(ARN) == Verdict::Allow,
                matches,
                "{pattern}"
            );
        }
    }

    #[test]
    fn an_explicit_deny_beats_an_allow_and_nothing_allowed_is_denied() {
        let both = grant(json!([
            { "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*" },
            { "Action": ["execute-api:*"], "Effect": "Deny", "Resource": [ARN] },
        ]));
        assert_eq!(both.policy.evaluate(ARN), Verdict::ExplicitDeny);
        let other = ARN.replace("/7", "/8");
        assert_eq!(both.policy.evaluate(&other), Verdict::Allow);
        assert_eq!(
            grant(allow(json!(["x", other.clone()])))
                .policy
                .evaluate(ARN),
            Verdict::ImplicitDeny
        );
        // Another action allows nothing here; the action matches without regard to case.
        let s3 = json!([{ "Action": "s3:GetObject", "Effect": "Allow", "Resource": "*" }]);
        assert_eq!(grant(s3).policy.evaluate(ARN), Verdict::ImplicitDeny);
        let lower = json!([{ "Action": "EXECUTE-API:invoke", "Effect": "Allow", "Resource": "*" }]);
        assert_eq!(grant(lower).policy.evaluate(ARN), Verdict::Allow);
    }

    #[test]
    fn a_condition_only_makes_the_policy_stricter() {
        let conditional_allow = json!([{ "Action": "execute-api:Invoke", "Effect": "Allow",
            "Resource": "*", "Condition": { "IpAddress": { "aws:SourceIp": "10.0.0.0/8" } } }]);
        assert_eq!(
            grant(conditional_allow).policy.evaluate(ARN),
            Verdict::ImplicitDeny
        );
        let conditional_deny = json!([
            { "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*" },
            { "Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "arn:none",
              "Condition": { "Bool": { "aws:SecureTransport": "false" } } },
        ]);
        assert_eq!(
            grant(conditional_deny).policy.evaluate(ARN),
            Verdict::ExplicitDeny
        );
    }

    #[test]
    fn context_values_are_stringified_and_the_usage_key_kept() {
        let out = json!({
            "principalId": "user",
            "policyDocument": { "Statement": { "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*" } },
            "context": { "s": "text", "n": 1, "b": true },
            "usageIdentifierKey": "key-1",
        });
        let grant = parse_grant(out.to_string().as_bytes()).expect("well-formed");
        assert_eq!(grant.principal_id, "user");
        let mut context = grant.context.clone();
        context.sort();
        assert_eq!(
            context,
            [
                ("b".into(), "true".into()),
                ("n".into(), "1".into()),
                ("s".into(), "text".into())
            ]
        );
        assert_eq!(grant.usage_key.as_deref(), Some("key-1"));
    }

    #[test]
    fn every_malformed_output_is_refused_with_why() {
        let statement =
            json!({ "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*" });
        let policy = json!({ "Statement": [statement] });
        for (output, expected) in [
            ("nope".to_owned(), "not JSON"),
            ("[]".to_owned(), "not a JSON object"),
            (json!({ "policyDocument": policy }).to_string(), "principalId"),
            (json!({ "principalId": 7, "policyDocument": policy }).to_string(), "principalId"),
            (json!({ "principalId": "u" }).to_string(), "policyDocument"),
            (json!({ "principalId": "u", "policyDocument": {} }).to_string(), "policyDocument"),
            (
                json!({ "principalId": "u", "policyDocument": { "Statement": [{ "Action": "execute-api:Invoke", "Resource": "*" }] } }).to_string(),
                "statement 0: `Effect`",
            ),
            (
                json!({ "principalId": "u", "policyDocument": { "Statement": [{ "Effect": "Allow", "Resource": "*" }] } }).to_string(),
                "`Action`",
            ),
            (
                json!({ "principalId": "u", "policyDocument": { "Statement": [{ "Effect": "Allow", "Action": "execute-api:Invoke", "Resource": 3 }] } }).to_string(),
                "`Resource`",
            ),
            (
                json!({ "principalId": "u", "policyDocument": { "Statement": [{ "Effect": "Allow", "NotAction": "x", "Resource": "*" }] } }).to_string(),
                "NotAction",
            ),
            (
                json!({ "principalId": "u", "policyDocument": policy, "context": { "o": { "a": 1 } } }).to_string(),
                "context `o`",
            ),
            (
                json!({ "principalId": "u", "policyDocument": policy, "context": [1] }).to_string(),
                "`context` is not an object",
            ),
            (
                json!({ "principalId": "u", "policyDocument": policy, "usageIdentifierKey": 1 }).to_string(),
                "usageIdentifierKey",
            ),
        ] {
            let why = parse_grant(output.as_bytes()).expect_err(&output).to_string();
            assert!(why.contains(expected), "{output}: {why}");
        }
    }

    #[test]
    fn the_token_and_request_inputs_carry_the_method_arn() {
        assert_eq!(
            token_event("allow", ARN),
            json!({ "type": "TOKEN", "authorizationToken": "allow", "methodArn": ARN })
        );
        let headers = http::HeaderMap::from_iter([(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("allow"),
        )]);
        let request = EventRequest {
            method: "GET",
            path: "/dev/pets/7",
            route_path: "/pets/7",
            resource: "/pets/{id}",
            route_key: "GET /pets/{id}",
            stage: "dev",
            query: Some("a=1"),
            headers: &headers,
            path_parameters: &[("id".into(), "7".into())],
            stage_variables: &[],
            body: b"ignored",
            request_id: "r-1",
            source_ip: "127.0.0.1",
            received_at: std::time::UNIX_EPOCH,
            protocol: "HTTP/1.1",
            api: "pets",
            authorizer: None,
            api_key: None,
            client_cert: None,
        };
        let event = request_event(&request, ARN);
        assert_eq!(event["type"], "REQUEST");
        assert_eq!(event["methodArn"], ARN);
        assert_eq!(event["resource"], "/pets/{id}");
        assert_eq!(event["path"], "/pets/7");
        assert_eq!(event["headers"]["authorization"], "allow");
        assert_eq!(event["queryStringParameters"]["a"], "1");
        assert_eq!(event["pathParameters"]["id"], "7");
        assert_eq!(event["requestContext"]["stage"], "dev");
        for gone in ["version", "body", "isBase64Encoded"] {
            assert!(event.get(gone).is_none(), "{gone}");
        }
    }
}
