//! OpenAPI document → Edgeway API definition.
//!
//! The definition is the `apis:` entry a user would write (the same keys, as a [`Tree`]), so
//! `edgeway import openapi` can print it and a config's `openapi:` can load it through the
//! same validation as a hand-written one. Every `x-amazon-apigateway-*` extension is either
//! carried out, reported as a warning with its JSON pointer, or refused as an error; nothing
//! is dropped without a word.
//!
//! Swagger 2.0 is read in place rather than converted first: what differs for an import is
//! where a few things live (`securityDefinitions`, `host` + `basePath`, body parameters,
//! parameters' inline types), and each has one accessor here.

use std::collections::{BTreeSet, HashMap};

use indexmap::IndexMap;

use super::document::{At, Document, Version};
use super::tree::{Object, Tree};
use super::{Finding, Options, path_params};

/// The operations of a path item, with the route method each one becomes.
const METHODS: [(&str, &str); 8] = [
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
    ("x-amazon-apigateway-any-method", "ANY"),
];

/// Extensions read elsewhere or that carry no behaviour, which need no warning.
const QUIET_EXTENSIONS: [&str; 1] = ["x-amazon-apigateway-importexport-version"];

/// What a security scheme means for the routes that name it.
#[derive(Debug, Clone)]
enum Scheme {
    /// `x-api-key` in a header: the route needs an API key.
    ApiKey,
    /// An authorizer of the API, by name; `jwt` for one that takes scopes.
    Authorizer { jwt: bool },
    /// A scheme Edgeway cannot carry out (already warned about, with why).
    Unsupported(String),
}

/// What an import made and found.
pub(super) struct Output {
    pub api: Tree,
    pub warnings: Vec<Finding>,
    pub errors: Vec<Finding>,
    /// The stage variables integrations use: every stage must give them a value.
    pub stage_variables: Vec<String>,
}

pub(super) struct Importer<'d> {
    doc: &'d Document,
    options: &'d Options,
    warnings: Vec<Finding>,
    errors: Vec<Finding>,
    schemes: IndexMap<String, Scheme>,
    authorizers: Object,
    models: Object,
    /// Which model each schema component became, so two operations share one.
    model_names: HashMap<At, String>,
    /// Request validators by name: (body, parameters).
    validators: IndexMap<String, (bool, bool)>,
    default_validator: Option<String>,
    stage_variables: BTreeSet<String>,
}

impl<'d> Importer<'d> {
    pub fn new(doc: &'d Document, options: &'d Options) -> Self {
        Self {
            doc,
            options,
            warnings: Vec::new(),
            errors: Vec::new(),
            schemes: IndexMap::new(),
            authorizers: Object::new(),
            models: Object::new(),
            model_names: HashMap::new(),
            validators: IndexMap::new(),
            default_validator: None,
            stage_variables: BTreeSet::new(),
        }
    }

    fn warn(&mut self, at: &At, message: impl Into<String>) {
        let pointer = self.doc.name(at);
        self.warnings.push(Finding::new(pointer, message));
    }

    /// Warns about `key` of `object` (found at `at`) when it is there: a field Edgeway does
    /// not carry out.
    fn warn_if_present(&mut self, object: &Tree, at: &At, key: &str, why: &str) {
        if object.get(key).is_some() {
            self.warn(&at.child(key), why);
        }
    }

    fn error(&mut self, at: &At, message: impl Into<String>) {
        let pointer = self.doc.name(at);
        self.errors.push(Finding::new(pointer, message));
    }

    fn root(&self) -> &'d Tree {
        self.doc.root()
    }

    /// The whole API definition.
    pub fn run(mut self) -> Output {
        let root = self.root();
        let mut api = Object::new();
        api.insert("name".into(), self.api_name().into());
        let stages = self.stages();
        api.insert("stages".into(), stages.into());
        if let Some(source) = self.api_key_source() {
            api.insert("api_key_source".into(), source.into());
        }
        self.read_validators();
        self.read_security_schemes();
        self.root_extensions();
        if root.get("security").is_some() {
            self.warn(
                &At::root("/security"),
                "top-level security is not applied, as API Gateway does not apply it: give each operation its own `security`",
            );
        }
        self.import_models();
        let routes = self.routes();
        if !self.authorizers.is_empty() {
            api.insert(
                "authorizers".into(),
                std::mem::take(&mut self.authorizers).into(),
            );
        }
        if !self.models.is_empty() {
            api.insert("models".into(), std::mem::take(&mut self.models).into());
        }
        if let Some(cors) = self.cors() {
            api.insert("cors".into(), cors);
        }
        if let Some(responses) = self.gateway_responses() {
            api.insert("gateway_responses".into(), responses);
        }
        api.insert("routes".into(), routes.into());
        Output {
            api: api.into(),
            warnings: self.warnings,
            errors: self.errors,
            stage_variables: self.stage_variables.into_iter().collect(),
        }
    }

    fn api_name(&self) -> String {
        if let Some(name) = &self.options.name {
            return name.clone();
        }
        let title = self
            .root()
            .pointer("/info/title")
            .and_then(Tree::as_str)
            .unwrap_or("api");
        let mut name = String::new();
        for c in title.trim().chars() {
            if c.is_ascii_alphanumeric() {
                name.push(c.to_ascii_lowercase());
            } else if !name.ends_with('-') && !name.is_empty() {
                name.push('-');
            }
        }
        let name = name.trim_end_matches('-');
        if name.is_empty() { "api" } else { name }.to_owned()
    }

    /// Stages from `servers` (3.x, with their variables' defaults) or `basePath` (2.0): the
    /// first path segment of each is a stage, as in API Gateway's exports.
    fn stages(&mut self) -> Object {
        let mut bases: Vec<(String, At)> = Vec::new();
        let root = self.root();
        match self.doc.version {
            Version::Swagger2 => {
                if let Some(base) = root.get("basePath").and_then(Tree::as_str) {
                    bases.push((base.to_owned(), At::root("/basePath")));
                }
            }
            Version::OpenApi30 | Version::OpenApi31 => {
                for (i, server) in root
                    .get("servers")
                    .and_then(Tree::as_array)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let at = At::root(format!("/servers/{i}"));
                    let Some(url) = server.get("url").and_then(Tree::as_str) else {
                        continue;
                    };
                    let mut url = url.to_owned();
                    if let Some(vars) = server.get("variables").and_then(Tree::as_object) {
                        for (name, var) in vars {
                            let value = var.get("default").and_then(Tree::as_text);
                            url = url.replace(&format!("{{{name}}}"), &value.unwrap_or_default());
                        }
                    }
                    let path = match url.split_once("://") {
                        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]).to_owned(),
                        None => url,
                    };
                    bases.push((path, at));
                    if server
                        .get("x-amazon-apigateway-endpoint-configuration")
                        .is_some()
                    {
                        self.warn(
                            &At::root(format!("/servers/{i}/x-amazon-apigateway-endpoint-configuration")),
                            "endpoint configuration is not carried out: an Edgeway node serves on its own listeners",
                        );
                    }
                }
            }
        }
        let mut stages = Object::new();
        for (base, at) in bases {
            let mut segments = base.split('/').filter(|s| !s.is_empty());
            let Some(stage) = segments.next() else {
                continue;
            };
            if segments.next().is_some() {
                self.warn(
                    &at,
                    format!("the base path {base} has more than a stage: the API is served at /{stage}/..."),
                );
            }
            stages
                .entry(stage.to_owned())
                .or_insert_with(|| Object::new().into());
        }
        if stages.is_empty() {
            let at = match self.doc.version {
                Version::Swagger2 => At::root("/basePath"),
                _ => At::root("/servers"),
            };
            self.warn(
                &at,
                "no stage is named by a base path: the definition has the stage `prod`",
            );
            stages.insert("prod".into(), Object::new().into());
        }
        stages
    }

    fn api_key_source(&mut self) -> Option<&'static str> {
        let at = At::root("/x-amazon-apigateway-api-key-source");
        let value = self.doc.get(&at)?;
        match value.as_str().map(str::to_ascii_uppercase).as_deref() {
            Some("HEADER") => Some("header"),
            Some("AUTHORIZER") => Some("authorizer"),
            _ => {
                self.error(&at, "expected HEADER or AUTHORIZER");
                None
            }
        }
    }

    fn read_validators(&mut self) {
        let root = self.root();
        let at = At::root("/x-amazon-apigateway-request-validators");
        if let Some(map) = self.doc.get(&at).and_then(Tree::as_object) {
            for (name, v) in map {
                let flag = |key| v.get(key).and_then(Tree::as_bool).unwrap_or(false);
                self.validators.insert(
                    name.clone(),
                    (
                        flag("validateRequestBody"),
                        flag("validateRequestParameters"),
                    ),
                );
            }
        }
        if let Some(name) = root
            .get("x-amazon-apigateway-request-validator")
            .and_then(Tree::as_str)
        {
            if self.validators.contains_key(name) {
                self.default_validator = Some(name.to_owned());
            } else {
                self.error(
                    &At::root("/x-amazon-apigateway-request-validator"),
                    format!("no request validator named \"{name}\" in x-amazon-apigateway-request-validators"),
                );
            }
        }
    }

    /// Root extensions other than those read where they apply.
    fn root_extensions(&mut self) {
        let Some(root) = self.root().as_object() else {
            return;
        };
        for key in root.keys() {
            let at = At::root(format!("/{key}"));
            let why = match key.as_str() {
                "x-amazon-apigateway-api-key-source"
                | "x-amazon-apigateway-request-validators"
                | "x-amazon-apigateway-request-validator"
                | "x-amazon-apigateway-cors"
                | "x-amazon-apigateway-gateway-responses" => continue,
                "x-amazon-apigateway-binary-media-types" => {
                    "binary media types are not needed: Edgeway passes every body through as bytes; an integration's `content_handling` converts"
                }
                "x-amazon-apigateway-policy" => {
                    "resource policies are not carried out: use the API's `policy` (source-IP allow and deny lists)"
                }
                "x-amazon-apigateway-minimum-compression-size" => {
                    "response compression is not carried out: bodies pass as the integration sends them"
                }
                "x-amazon-apigateway-endpoint-configuration" => {
                    "endpoint configuration is not carried out: an Edgeway node serves on its own listeners"
                }
                "x-amazon-apigateway-documentation" => {
                    "documentation parts are not imported: descriptions in the document itself are kept for export"
                }
                k if k.starts_with("x-amazon-apigateway-") && !QUIET_EXTENSIONS.contains(&k) => {
                    "this extension is not supported; it is ignored"
                }
                _ => continue,
            };
            self.warn(&at, why);
        }
    }

    /// Security schemes with API Gateway's meaning: Lambda authorizers, JWT and Cognito
    /// authorizers, SigV4 (`x-amazon-apigateway-authtype: awsSigv4`) and the API key.
    fn read_security_schemes(&mut self) {
        let base = match self.doc.version {
            Version::Swagger2 => At::root("/securityDefinitions"),
            _ => At::root("/components/securitySchemes"),
        };
        let Some(schemes) = self.doc.get(&base).and_then(Tree::as_object) else {
            return;
        };
        for (name, scheme) in schemes {
            let at = base.child(name);
            let (scheme, at) = match self.doc.resolve(scheme, &at) {
                Ok(found) => found,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            let meaning = self.security_scheme(name, scheme, &at);
            self.schemes.insert(name.clone(), meaning);
        }
    }

    fn security_scheme(&mut self, name: &str, scheme: &Tree, at: &At) -> Scheme {
        let kind = scheme.get("type").and_then(Tree::as_str).unwrap_or("");
        let authtype = scheme
            .get("x-amazon-apigateway-authtype")
            .and_then(Tree::as_str)
            .unwrap_or("");
        if let Some(authorizer) = scheme.get("x-amazon-apigateway-authorizer") {
            let at = at.child("x-amazon-apigateway-authorizer");
            return match self.authorizer(scheme, authorizer, &at) {
                Some((raw, jwt)) => {
                    self.authorizers.insert(name.to_owned(), raw.into());
                    Scheme::Authorizer { jwt }
                }
                None => Scheme::Unsupported(format!(
                    "its authorizer was refused ({})",
                    self.doc.name(&at)
                )),
            };
        }
        if authtype.to_ascii_lowercase().starts_with("aws") {
            return match self.sigv4(at) {
                Some(sigv4) => {
                    self.authorizers.insert(name.to_owned(), sigv4);
                    Scheme::Authorizer { jwt: false }
                }
                None => Scheme::Unsupported("its region is unknown".into()),
            };
        }
        let header = scheme.get("name").and_then(Tree::as_str).unwrap_or("");
        let place = scheme.get("in").and_then(Tree::as_str).unwrap_or("");
        if kind == "apiKey" && place == "header" && header.eq_ignore_ascii_case("x-api-key") {
            return Scheme::ApiKey;
        }
        let why = format!(
            "a `{kind}` scheme without x-amazon-apigateway-authorizer is not carried out; routes that name it are not protected by it"
        );
        self.warn(at, why.clone());
        Scheme::Unsupported(why)
    }

    /// A SigV4 authorizer for the region the API was exported from: clients sign for
    /// `execute-api` in that region.
    fn sigv4(&mut self, at: &At) -> Option<Tree> {
        // An Edgeway export names every region; an API Gateway one only implies its own.
        let regions_at = at.child("x-edgeway-regions");
        if let Some(regions) = self.doc.get(&regions_at).and_then(Tree::as_array) {
            let mut settings = Object::new();
            settings.insert("regions".into(), regions.to_vec().into());
            let mut sigv4 = Object::new();
            sigv4.insert("sigv4".into(), settings.into());
            return Some(sigv4.into());
        }
        let Some(region) = self.region() else {
            self.error(
                at,
                "SigV4 needs the region clients sign for, and neither the servers (or host) nor an ARN in the document names one",
            );
            return None;
        };
        let mut settings = Object::new();
        settings.insert("regions".into(), vec![Tree::from(region)].into());
        let mut sigv4 = Object::new();
        sigv4.insert("sigv4".into(), settings.into());
        Some(sigv4.into())
    }

    /// The API's region: from an `execute-api` host (`servers` or `host`), else from the
    /// first API Gateway ARN in the document.
    fn region(&self) -> Option<String> {
        let root = self.root();
        let hosts = root
            .get("servers")
            .and_then(Tree::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.get("url").and_then(Tree::as_str))
            .chain(root.get("host").and_then(Tree::as_str));
        for host in hosts {
            if let Some((_, rest)) = host.split_once(".execute-api.")
                && let Some((region, _)) = rest.split_once(".amazonaws.com")
                && !region.is_empty()
            {
                return Some(region.to_owned());
            }
        }
        fn first_arn_region(tree: &Tree) -> Option<String> {
            match tree {
                Tree::String(s) => {
                    let rest = s.strip_prefix("arn:aws:apigateway:")?;
                    let region = rest.split(':').next()?;
                    (!region.is_empty()).then(|| region.to_owned())
                }
                Tree::Array(items) => items.iter().find_map(first_arn_region),
                Tree::Object(map) => map.values().find_map(first_arn_region),
                _ => None,
            }
        }
        first_arn_region(root)
    }

    /// An `x-amazon-apigateway-authorizer` → an Edgeway authorizer, and whether it is a JWT
    /// one (whose routes may name scopes).
    fn authorizer(&mut self, scheme: &Tree, authorizer: &Tree, at: &At) -> Option<(Object, bool)> {
        let kind = authorizer
            .get("type")
            .and_then(Tree::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut out = Object::new();
        let mut jwt = false;
        match kind.as_str() {
            "token" | "request" => {
                let uri_at = at.child("authorizerUri");
                let Some(uri) = self.doc.get(&uri_at).and_then(Tree::as_str) else {
                    self.error(at, "a Lambda authorizer needs `authorizerUri`");
                    return None;
                };
                let plugin = self.function_plugin(uri, &uri_at)?;
                // Edgeway's export marks its own plugin authorizers.
                if authorizer.get("x-edgeway-plugin") == Some(&Tree::Bool(true)) {
                    out.insert("plugin".into(), plugin.into());
                    return self.authorizer_identity(scheme, authorizer, at, out, false);
                }
                let mut lambda = Object::new();
                lambda.insert("plugin".into(), plugin.into());
                lambda.insert("type".into(), kind.as_str().into());
                // The method ARNs its policies name are in the function's region and account.
                if let Some((region, account)) = lambda_arn(uri).and_then(arn_region_account) {
                    lambda.insert("region".into(), region.into());
                    lambda.insert("account_id".into(), account.into());
                }
                if let Some(api_id) = authorizer.get("x-edgeway-api-id").and_then(Tree::as_str) {
                    lambda.insert("api_id".into(), api_id.into());
                }
                out.insert("lambda".into(), lambda.into());
                if authorizer
                    .get("authorizerPayloadFormatVersion")
                    .and_then(Tree::as_text)
                    .is_some_and(|v| v != "1.0")
                {
                    self.warn(
                        &at.child("authorizerPayloadFormatVersion"),
                        "the function is given the REQUEST input of payload 1.0 (2.0's is not supported yet)",
                    );
                }
                if authorizer
                    .get("enableSimpleResponses")
                    .is_some_and(|v| *v == Tree::Bool(true))
                {
                    self.warn(
                        &at.child("enableSimpleResponses"),
                        "simple responses are not supported yet: the function must return an IAM policy",
                    );
                }
            }
            "jwt" => {
                let issuer_at = at.child("jwtConfiguration").child("issuer");
                let Some(issuer) = self.doc.get(&issuer_at).and_then(Tree::as_str) else {
                    self.error(at, "a jwt authorizer needs `jwtConfiguration.issuer`");
                    return None;
                };
                let audiences: Vec<Tree> = authorizer
                    .pointer("/jwtConfiguration/audience")
                    .and_then(Tree::as_array)
                    .unwrap_or_default()
                    .to_vec();
                let mut settings = jwt_settings(issuer, audiences);
                match scheme.get("x-edgeway-jwks-url").and_then(Tree::as_str) {
                    Some(url) => {
                        settings.insert("jwks_url".into(), url.into());
                    }
                    None => self.warn(
                        &issuer_at,
                        format!("keys are read from {}/.well-known/jwks.json (set `jwks_url` if the issuer publishes them elsewhere)", issuer.trim_end_matches('/')),
                    ),
                }
                out.insert("jwt".into(), settings.into());
                jwt = true;
            }
            "cognito_user_pools" => {
                let arn_at = at.child("providerARNs").child("0");
                let Some(arn) = self.doc.get(&arn_at).and_then(Tree::as_str) else {
                    self.error(at, "a cognito_user_pools authorizer needs `providerARNs`");
                    return None;
                };
                let Some(issuer) = cognito_issuer(arn) else {
                    self.error(
                        &arn_at,
                        format!("{arn} is not a user pool ARN (arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL_ID)"),
                    );
                    return None;
                };
                out.insert("jwt".into(), jwt_settings(&issuer, Vec::new()).into());
                self.warn(
                    &arn_at,
                    "give the user pool's app client ids as the authorizer's `jwt.audiences`: Edgeway checks a token's audience, which API Gateway does through the pool",
                );
                if authorizer
                    .get("providerARNs")
                    .and_then(Tree::as_array)
                    .is_some_and(|a| a.len() > 1)
                {
                    self.warn(
                        &at.child("providerARNs"),
                        "only the first user pool is trusted: an Edgeway JWT authorizer has one issuer",
                    );
                }
                jwt = true;
            }
            other => {
                self.error(
                    &at.child("type"),
                    format!("unknown authorizer type \"{other}\"; expected token, request, jwt or cognito_user_pools"),
                );
                return None;
            }
        }
        self.authorizer_identity(scheme, authorizer, at, out, jwt)
    }

    /// The identity sources and result TTL of an authorizer, added to `out`.
    fn authorizer_identity(
        &mut self,
        scheme: &Tree,
        authorizer: &Tree,
        at: &At,
        mut out: Object,
        jwt: bool,
    ) -> Option<(Object, bool)> {
        // Identity: `identitySource` (request, jwt), else the scheme's header (token,
        // cognito), as API Gateway reads them.
        let mut sources = Vec::new();
        if let Some(list) = authorizer.get("identitySource").and_then(Tree::as_str) {
            for source in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match identity_source(source) {
                    Some(s) => sources.push(Tree::from(s)),
                    None => self.error(
                        &at.child("identitySource"),
                        format!("{source} is not an identity source Edgeway can read (a header, query string, path parameter or stage variable)"),
                    ),
                }
            }
        } else if let Some(header) = scheme.get("name").and_then(Tree::as_str)
            && scheme.get("in").and_then(Tree::as_str) == Some("header")
            && !header.eq_ignore_ascii_case("unused")
        {
            sources.push(format!("header.{}", header.to_ascii_lowercase()).into());
        }
        if !sources.is_empty() {
            out.insert("identity_source".into(), sources.into());
        }
        if let Some(ttl) = authorizer.get("authorizerResultTtlInSeconds") {
            match ttl.as_u64() {
                Some(ttl) => {
                    out.insert("result_ttl_s".into(), ttl.into());
                }
                None => self.error(
                    &at.child("authorizerResultTtlInSeconds"),
                    "expected a whole number of seconds",
                ),
            }
        }
        self.warn_if_present(authorizer, at, "identityValidationExpression", "not carried out: the authorizer is called for every token (check the token's form in the plugin)");
        self.warn_if_present(
            authorizer,
            at,
            "authorizerCredentials",
            "IAM credentials are not used: Edgeway runs the authorizer plugin itself",
        );
        Some((out, jwt))
    }

    /// The plugin a Lambda ARN (or an `arn:aws:apigateway:…:lambda:path/…/functions/ARN/
    /// invocations` URI) maps to through the `functions` table; an unmapped one is an error
    /// naming the ARN.
    fn function_plugin(&mut self, uri: &str, at: &At) -> Option<String> {
        let Some(arn) = lambda_arn(uri) else {
            self.error(
                at,
                format!("{uri} is not a Lambda function ARN or invocation URI"),
            );
            return None;
        };
        let name = arn
            .split(":function:")
            .nth(1)
            .map(|rest| rest.split(':').next().unwrap_or(rest));
        let unqualified = name.map(|n| {
            let end = arn.find(":function:").unwrap_or(0) + ":function:".len() + n.len();
            &arn[..end]
        });
        let found = [Some(arn), unqualified, name]
            .into_iter()
            .flatten()
            .find_map(|key| self.options.functions.get(key));
        match found {
            Some(plugin) => Some(plugin.clone()),
            None => {
                self.error(
                    at,
                    format!("no plugin for the Lambda function {arn}: map it in `functions` (its ARN or name → a plugin)"),
                );
                None
            }
        }
    }

    fn cors(&mut self) -> Option<Tree> {
        let at = At::root("/x-amazon-apigateway-cors");
        let cors = self.doc.get(&at)?;
        let mut out = Object::new();
        for (from, to) in [
            ("allowOrigins", "allow_origins"),
            ("allowMethods", "allow_methods"),
            ("allowHeaders", "allow_headers"),
            ("exposeHeaders", "expose_headers"),
        ] {
            if let Some(list) = cors.get(from) {
                if list.as_array().is_none() {
                    self.error(&at.child(from), "expected an array of strings");
                    continue;
                }
                out.insert(to.into(), list.clone());
            }
        }
        if cors.get("allowCredentials").and_then(Tree::as_bool) == Some(true) {
            out.insert("allow_credentials".into(), true.into());
        }
        if let Some(age) = cors.get("maxAge") {
            match age.as_u64() {
                Some(age) => {
                    out.insert("max_age_s".into(), age.into());
                }
                None => self.warn(
                    &at.child("maxAge"),
                    "a negative max age (no caching of preflights) is not supported: browsers use their default",
                ),
            }
        }
        Some(out.into())
    }

    fn gateway_responses(&mut self) -> Option<Tree> {
        let base = At::root("/x-amazon-apigateway-gateway-responses");
        let responses = self.doc.get(&base)?.as_object()?;
        let mut out = Object::new();
        for (kind, r) in responses {
            let at = base.child(kind);
            if crate::gateway_responses::ResponseType::from_name(kind).is_none() {
                self.error(&at, format!("\"{kind}\" is not a gateway response type"));
                continue;
            }
            let mut entry = Object::new();
            if let Some(status) = r.get("statusCode") {
                match status.as_u64() {
                    Some(s) => {
                        entry.insert("status".into(), s.into());
                    }
                    None => self.error(&at.child("statusCode"), "expected a status code"),
                }
            }
            let mut headers = Object::new();
            for (target, source) in r
                .get("responseParameters")
                .and_then(Tree::as_object)
                .into_iter()
                .flatten()
            {
                let here = at.child("responseParameters").child(target);
                let (Some(name), Some(value)) = (
                    target.strip_prefix("gatewayresponse.header."),
                    source.as_str().and_then(static_value),
                ) else {
                    self.warn(
                        &here,
                        "only static headers ('value' → gatewayresponse.header.NAME) are carried out in gateway responses",
                    );
                    continue;
                };
                headers.insert(name.to_owned(), value.into());
            }
            if !headers.is_empty() {
                entry.insert("headers".into(), headers.into());
            }
            if let Some(templates) = r.get("responseTemplates").and_then(Tree::as_object) {
                let chosen = templates
                    .get_index_of("application/json")
                    .or((!templates.is_empty()).then_some(0));
                for (i, (media, body)) in templates.iter().enumerate() {
                    let here = at.child("responseTemplates").child(media);
                    if Some(i) != chosen {
                        self.warn(&here, "a gateway response has one body in Edgeway: the application/json template (or the first) is kept");
                        continue;
                    }
                    let Some(body) = body.as_str() else {
                        self.error(&here, "expected a template string");
                        continue;
                    };
                    if let Err(e) = crate::gateway_responses::Template::parse(body) {
                        self.error(&here, e.to_string());
                        continue;
                    }
                    entry.insert("body".into(), body.into());
                }
            }
            out.insert(kind.clone(), entry.into());
        }
        (!out.is_empty()).then(|| out.into())
    }

    fn routes(&mut self) -> Vec<Tree> {
        let mut routes = Vec::new();
        let base = At::root("/paths");
        let Some(paths) = self.doc.get(&base).and_then(Tree::as_object) else {
            self.warn(&base, "the document has no paths: the API has no routes");
            return routes;
        };
        for (path, item) in paths {
            if path.starts_with("x-") {
                continue;
            }
            let at = base.child(path);
            let (item, item_at) = match self.doc.resolve(item, &at) {
                Ok(found) => found,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            let Some(ops) = item.as_object() else {
                self.error(&at, "a path item is an object");
                continue;
            };
            let route_path = if path == "/$default" {
                self.warn(&at, "the $default route is served as ANY /{proxy+}");
                "/{proxy+}".to_owned()
            } else if !path.starts_with('/') {
                self.error(&at, "a path starts with /");
                continue;
            } else {
                path.clone()
            };
            for (key, op) in ops {
                let op_at = item_at.child(key);
                if let Some((_, method)) = METHODS.iter().find(|(k, _)| k == key) {
                    let method = if path == "/$default" { "ANY" } else { method };
                    if let Some(route) = self.route(method, &route_path, item, op, &op_at) {
                        routes.push(route);
                    }
                } else if key == "trace" {
                    self.error(&op_at, "TRACE routes are not supported");
                } else if key.starts_with("x-amazon-apigateway-") {
                    self.warn(
                        &op_at,
                        "this extension is not supported here; it is ignored",
                    );
                }
            }
        }
        routes
    }

    /// One operation → one route.
    fn route(&mut self, method: &str, path: &str, item: &Tree, op: &Tree, at: &At) -> Option<Tree> {
        let params = self.parameters(item, op, at);
        let route_params = path_params(path);
        let mut route = Object::new();
        route.insert("route".into(), format!("{method} {path}").into());
        self.security(op, at, &mut route);
        if let Some(validation) = self.validation(op, at, &params) {
            route.insert("validation".into(), validation);
        }
        for (key, _) in op.as_object().into_iter().flatten() {
            match key.as_str() {
                "x-amazon-apigateway-integration"
                | "x-amazon-apigateway-request-validator"
                | "x-amazon-apigateway-auth"
                | "isDefaultRoute" => {}
                k if k.starts_with("x-amazon-apigateway-") => {
                    self.warn(
                        &at.child(k),
                        "this extension is not supported here; it is ignored",
                    );
                }
                _ => {}
            }
        }
        let integration_at = at.child("x-amazon-apigateway-integration");
        let Some(integration) = self.doc.get(&integration_at) else {
            self.error(
                at,
                "no x-amazon-apigateway-integration: Edgeway needs to know what serves the route",
            );
            return None;
        };
        let (integration, integration_at) = match self.doc.resolve(integration, &integration_at) {
            Ok(found) => found,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let integration = self.integration(
            method,
            &route_params,
            integration,
            &integration_at,
            &mut route,
        )?;
        route.insert("integration".into(), integration);
        Some(route.into())
    }

    /// A path item's and an operation's parameters (the operation's win), references
    /// resolved: (name, in, parameter).
    fn parameters(&mut self, item: &Tree, op: &Tree, at: &At) -> Vec<(String, String, Tree)> {
        let mut out: Vec<(String, String, Tree)> = Vec::new();
        let item_at = At {
            file: at.file,
            pointer: at
                .pointer
                .rsplit_once('/')
                .map_or("", |(p, _)| p)
                .to_owned(),
        };
        for (list, list_at) in [
            (item.get("parameters"), item_at.child("parameters")),
            (op.get("parameters"), at.child("parameters")),
        ] {
            for (i, p) in list
                .and_then(Tree::as_array)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let (p, _) = match self.doc.resolve(p, &list_at.child(&i.to_string())) {
                    Ok(found) => found,
                    Err(e) => {
                        self.errors.push(e);
                        continue;
                    }
                };
                let name = p
                    .get("name")
                    .and_then(Tree::as_str)
                    .unwrap_or("")
                    .to_owned();
                let place = p.get("in").and_then(Tree::as_str).unwrap_or("").to_owned();
                out.retain(|(n, i, _)| !(n == &name && i == &place));
                out.push((name, place, p.clone()));
            }
        }
        out
    }

    /// The operation's `security` (its first requirement) and `x-amazon-apigateway-auth`.
    fn security(&mut self, op: &Tree, at: &At, route: &mut Object) {
        if let Some(auth) = op.get("x-amazon-apigateway-auth") {
            let kind = auth.get("type").and_then(Tree::as_str).unwrap_or("");
            match kind.to_ascii_uppercase().as_str() {
                "NONE" => {}
                "AWS_IAM" => {
                    if !self.authorizers.contains_key("sigv4") {
                        let Some(sigv4) = self.sigv4(&at.child("x-amazon-apigateway-auth")) else {
                            return;
                        };
                        self.authorizers.insert("sigv4".into(), sigv4);
                    }
                    route.insert("auth".into(), "sigv4".into());
                }
                other => self.error(
                    &at.child("x-amazon-apigateway-auth"),
                    format!("unknown auth type \"{other}\"; expected NONE or AWS_IAM"),
                ),
            }
        }
        let Some(requirements) = op.get("security").and_then(Tree::as_array) else {
            return;
        };
        let security_at = at.child("security");
        if requirements.len() > 1 {
            self.warn(
                &security_at,
                "only the first security requirement is applied, as in API Gateway",
            );
        }
        let Some(first) = requirements.first().and_then(Tree::as_object) else {
            return;
        };
        for (name, scopes) in first {
            let here = security_at.child("0").child(name);
            match self.schemes.get(name).cloned() {
                None => self.error(&here, format!("no security scheme named \"{name}\"")),
                Some(Scheme::ApiKey) => {
                    route.insert("api_key_required".into(), true.into());
                }
                Some(Scheme::Authorizer { jwt }) => {
                    if route.contains_key("auth") {
                        self.error(
                            &here,
                            "a route has one authorizer in Edgeway (as in API Gateway)",
                        );
                        continue;
                    }
                    route.insert("auth".into(), name.clone().into());
                    let scopes = scopes.as_array().unwrap_or_default();
                    if !scopes.is_empty() {
                        if jwt {
                            route.insert("scopes".into(), scopes.to_vec().into());
                        } else {
                            self.warn(&here, "scopes apply to JWT authorizers only; ignored");
                        }
                    }
                }
                Some(Scheme::Unsupported(why)) => self.warn(&here, why),
            }
        }
    }

    /// Request validation, when a request validator applies to the operation.
    fn validation(
        &mut self,
        op: &Tree,
        at: &At,
        params: &[(String, String, Tree)],
    ) -> Option<Tree> {
        let named = match op.get("x-amazon-apigateway-request-validator") {
            Some(v) => {
                let name = v.as_str().unwrap_or("");
                if !self.validators.contains_key(name) {
                    self.error(
                        &at.child("x-amazon-apigateway-request-validator"),
                        format!("no request validator named \"{name}\" in x-amazon-apigateway-request-validators"),
                    );
                    return None;
                }
                Some(name.to_owned())
            }
            None => self.default_validator.clone(),
        };
        let (body, parameters) = *self.validators.get(named.as_deref()?)?;
        let mut out = Object::new();
        let mode = match (body, parameters) {
            (true, true) => "all",
            (true, false) => "body",
            (false, true) => "parameters",
            (false, false) => return None,
        };
        out.insert("validate".into(), mode.into());
        if parameters {
            let required: Vec<Tree> = params
                .iter()
                .filter(|(_, _, p)| p.get("required").and_then(Tree::as_bool) == Some(true))
                .filter_map(|(name, place, _)| match place.as_str() {
                    "query" => Some(format!("querystring.{name}").into()),
                    "header" => Some(format!("header.{name}").into()),
                    _ => None,
                })
                .collect();
            if !required.is_empty() {
                out.insert("required".into(), required.into());
            }
        }
        if body && let Some(schema) = self.body_schema(op, at, params) {
            out.insert("body".into(), schema);
        }
        (out.len() > 1).then(|| out.into())
    }

    /// The request body's JSON schema as a `validation.body` source: `{model: NAME}` for a
    /// schema component, `{schema: {...}}` for an inline one.
    fn body_schema(
        &mut self,
        op: &Tree,
        at: &At,
        params: &[(String, String, Tree)],
    ) -> Option<Tree> {
        let (schema, schema_at) = match self.doc.version {
            Version::Swagger2 => {
                let (i, (_, _, p)) = params
                    .iter()
                    .enumerate()
                    .find(|(_, (_, place, _))| place == "body")?;
                (
                    p.get("schema")?.clone(),
                    at.child("parameters").child(&i.to_string()).child("schema"),
                )
            }
            _ => {
                let body_at = at.child("requestBody");
                let (body, body_at) = self.doc.resolve(op.get("requestBody")?, &body_at).ok()?;
                let content = body.get("content")?.as_object()?;
                let (media, media_value) = content
                    .get_key_value("application/json")
                    .or_else(|| content.first())?;
                for other in content.keys().filter(|k| *k != media) {
                    self.warn(
                        &body_at.child("content").child(other),
                        format!("bodies are validated against one schema in Edgeway: the {media} schema applies to every request"),
                    );
                }
                let at = body_at.child("content").child(media).child("schema");
                (media_value.get("schema")?.clone(), at)
            }
        };
        if let Some(reference) = schema.get("$ref").and_then(Tree::as_str)
            && schema.as_object().is_some_and(|o| o.len() == 1)
        {
            let target = match self.doc.target(reference, &schema_at) {
                Ok(t) => t,
                Err(e) => {
                    self.errors.push(e);
                    return None;
                }
            };
            let name = self.model(&target)?;
            let mut out = Object::new();
            out.insert("model".into(), name.into());
            return Some(out.into());
        }
        let compiled = self.self_contained(&schema, &schema_at)?;
        let mut out = Object::new();
        out.insert("schema".into(), compiled);
        Some(out.into())
    }

    /// Every schema component becomes a model, as every model of an API Gateway API is in
    /// its export, whether a method uses it or not; those an Edgeway export marks as no model
    /// of their own (`x-edgeway-model: false`: a model's definition, the gateway's error
    /// schema) are only brought into the models that refer to them.
    fn import_models(&mut self) {
        let base = match self.doc.version {
            Version::Swagger2 => At::root("/definitions"),
            _ => At::root("/components/schemas"),
        };
        let Some(schemas) = self.doc.get(&base).and_then(Tree::as_object) else {
            return;
        };
        for (name, schema) in schemas {
            if schema.get(super::NOT_A_MODEL).and_then(Tree::as_bool) == Some(false) {
                continue;
            }
            self.model(&base.child(name));
        }
    }

    /// The model a schema component becomes (made once, named after the component).
    fn model(&mut self, target: &At) -> Option<String> {
        if let Some(name) = self.model_names.get(target) {
            return Some(name.clone());
        }
        let schema = self.doc.get(target)?.clone();
        let base = target
            .pointer
            .rsplit('/')
            .next()
            .unwrap_or("Model")
            .replace("~1", "/")
            .replace("~0", "~");
        let mut name = base.clone();
        let mut n = 1;
        while self.models.contains_key(&name) {
            n += 1;
            name = format!("{base}{n}");
        }
        let compiled = self.self_contained(&schema, target)?;
        let mut source = Object::new();
        source.insert("schema".into(), compiled);
        self.models.insert(name.clone(), source.into());
        self.model_names.insert(target.clone(), name.clone());
        Some(name)
    }

    /// A schema with every `$ref` it reaches brought in under `definitions` (`$defs` for
    /// 3.1), OpenAPI 3.0's `nullable` turned into a JSON Schema type, so the schema stands on
    /// its own as an Edgeway model.
    fn self_contained(&mut self, schema: &Tree, at: &At) -> Option<Tree> {
        let defs_key = match self.doc.version {
            Version::OpenApi31 => "$defs",
            _ => "definitions",
        };
        let mut defs: IndexMap<At, (String, Tree)> = IndexMap::new();
        let mut pending = Vec::new();
        let mut main = self.rewrite(schema, at, defs_key, &mut defs, &mut pending)?;
        while let Some(target) = pending.pop() {
            let value = match self.doc.get(&target) {
                Some(v) => v.clone(),
                None => {
                    self.error(at, format!("{} names nothing", self.doc.name(&target)));
                    return None;
                }
            };
            let rewritten = self.rewrite(&value, &target, defs_key, &mut defs, &mut pending)?;
            if let Some(entry) = defs.get_mut(&target) {
                entry.1 = rewritten;
            }
        }
        if let Tree::Object(map) = &mut main {
            if !defs.is_empty() {
                let defs: Object = defs.into_values().collect();
                map.insert(defs_key.into(), defs.into());
            }
            if self.doc.version == Version::OpenApi31 && !map.contains_key("$schema") {
                map.insert(
                    "$schema".into(),
                    "https://json-schema.org/draft/2020-12/schema".into(),
                );
            }
        }
        Some(main)
    }

    fn rewrite(
        &mut self,
        schema: &Tree,
        at: &At,
        defs_key: &str,
        defs: &mut IndexMap<At, (String, Tree)>,
        pending: &mut Vec<At>,
    ) -> Option<Tree> {
        Some(match schema {
            Tree::Object(map) => {
                let mut out = Object::new();
                for (key, value) in map {
                    if key == "$ref"
                        && let Some(reference) = value.as_str()
                    {
                        let target = match self.doc.target(reference, at) {
                            Ok(t) => t,
                            Err(e) => {
                                self.errors.push(e);
                                return None;
                            }
                        };
                        let name = match defs.get(&target) {
                            Some((name, _)) => name.clone(),
                            None => {
                                let base = target.pointer.rsplit('/').next().unwrap_or("def");
                                let mut name = base.to_owned();
                                let mut n = 1;
                                while defs.values().any(|(d, _)| d == &name) {
                                    n += 1;
                                    name = format!("{base}{n}");
                                }
                                defs.insert(target.clone(), (name.clone(), Tree::Null));
                                pending.push(target);
                                name
                            }
                        };
                        out.insert(key.clone(), format!("#/{defs_key}/{name}").into());
                        continue;
                    }
                    if (key == "nullable" && self.doc.version == Version::OpenApi30)
                        || key == super::NOT_A_MODEL
                    {
                        continue;
                    }
                    out.insert(
                        key.clone(),
                        self.rewrite(value, &at.child(key), defs_key, defs, pending)?,
                    );
                }
                if self.doc.version == Version::OpenApi30
                    && map.get("nullable").and_then(Tree::as_bool) == Some(true)
                    && let Some(Tree::String(kind)) = out.get("type").cloned()
                {
                    out.insert("type".into(), vec![Tree::from(kind), "null".into()].into());
                }
                Tree::Object(out)
            }
            Tree::Array(items) => Tree::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        self.rewrite(v, &at.child(&i.to_string()), defs_key, defs, pending)
                    })
                    .collect::<Option<_>>()?,
            ),
            other => other.clone(),
        })
    }

    /// `x-amazon-apigateway-integration` → `integration`, with the route settings some of
    /// its fields become (`timeout_ms`, `cache`).
    fn integration(
        &mut self,
        method: &str,
        route_params: &[(String, bool)],
        integration: &Tree,
        at: &At,
        route: &mut Object,
    ) -> Option<Tree> {
        let kind = integration
            .get("type")
            .and_then(Tree::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let uri = integration.get("uri").and_then(Tree::as_str);
        let timeout = integration.get("timeoutInMillis").and_then(Tree::as_u64);
        self.integration_common(integration, at, route_params);
        let mut out = Object::new();
        match kind.as_str() {
            "http_proxy" => {
                let Some(uri) = uri else {
                    self.error(at, "an http_proxy integration needs `uri`");
                    return None;
                };
                let uri = self.proxy_uri(uri, integration, at, route_params)?;
                if let Some(m) = integration.get("httpMethod").and_then(Tree::as_str)
                    && !m.eq_ignore_ascii_case("ANY")
                    && !m.eq_ignore_ascii_case(method)
                {
                    self.warn(
                        &at.child("httpMethod"),
                        format!("a proxy integration forwards the request's own method, not {m}"),
                    );
                }
                self.ignored_on_proxy(integration, at);
                if let Some(t) = timeout {
                    route.insert("timeout_ms".into(), t.into());
                }
                out.insert("http_proxy".into(), uri.into());
            }
            "http" => {
                let Some(uri) = uri else {
                    self.error(at, "an http integration needs `uri`");
                    return None;
                };
                self.note_stage_variables(uri);
                let mut http = Object::new();
                if let Some(m) = integration.get("httpMethod").and_then(Tree::as_str)
                    && !m.eq_ignore_ascii_case("ANY")
                {
                    http.insert("method".into(), m.to_ascii_uppercase().into());
                }
                http.insert("uri".into(), uri.into());
                self.mapping_fields(integration, at, &mut http, true);
                if let Some(t) = timeout {
                    http.insert("timeout_ms".into(), t.into());
                }
                out.insert("http".into(), http.into());
            }
            "mock" => {
                let mock = match plain_mock(integration) {
                    Some(plain) => {
                        self.mock_passthrough(integration, at);
                        plain
                    }
                    None => {
                        let mut mock = Object::new();
                        self.mapping_fields(integration, at, &mut mock, false);
                        mock
                    }
                };
                out.insert("mock".into(), mock.into());
            }
            "aws_proxy" => {
                let uri_at = at.child("uri");
                let Some(uri) = uri else {
                    self.error(at, "an aws_proxy integration needs `uri`");
                    return None;
                };
                if integration.get("integrationSubtype").is_some() {
                    self.error(
                        &at.child("integrationSubtype"),
                        "AWS service integrations (integrationSubtype) are not supported yet",
                    );
                    return None;
                }
                let plugin = self.function_plugin(uri, &uri_at)?;
                // REST APIs have no payloadFormatVersion: their event is 1.0.
                let version = integration
                    .get("payloadFormatVersion")
                    .and_then(Tree::as_text)
                    .unwrap_or_else(|| "1.0".into());
                let payload = match version.as_ref() {
                    "1.0" => "aws-proxy-1.0",
                    "2.0" => "aws-proxy-2.0",
                    other => {
                        self.error(
                            &at.child("payloadFormatVersion"),
                            format!("unknown payload format \"{other}\"; expected 1.0 or 2.0"),
                        );
                        return None;
                    }
                };
                if let Some(t) = timeout {
                    route.insert("timeout_ms".into(), t.into());
                }
                // Edgeway's export marks a handler given its own request record.
                if integration.get("x-edgeway-payload").and_then(Tree::as_str) == Some("edgeway") {
                    out.insert("function".into(), plugin.into());
                } else {
                    let mut function = Object::new();
                    function.insert("plugin".into(), plugin.into());
                    function.insert("payload".into(), payload.into());
                    out.insert("function".into(), function.into());
                }
            }
            "aws" => {
                let Some(uri) = uri else {
                    self.error(at, "an aws integration needs `uri`");
                    return None;
                };
                let call = match uri.parse::<crate::upstream::aws::AwsUri>() {
                    Ok(call) => call,
                    Err(crate::upstream::aws::AwsUriError::Lambda) => {
                        self.error(
                            &at.child("uri"),
                            "Lambda custom (non-proxy) integrations are not supported yet; a Lambda proxy integration (aws_proxy) is",
                        );
                        return None;
                    }
                    Err(e) => {
                        self.error(&at.child("uri"), format!("\"{uri}\": {e}"));
                        return None;
                    }
                };
                let mut aws = Object::new();
                aws.insert("uri".into(), uri.trim().into());
                if let Some(m) = integration.get("httpMethod").and_then(Tree::as_str) {
                    if call.protocol() == crate::upstream::aws::Protocol::Rest {
                        aws.insert("method".into(), m.to_ascii_uppercase().into());
                    } else if !m.eq_ignore_ascii_case("POST") {
                        self.warn(
                            &at.child("httpMethod"),
                            format!(
                                "{} is called with POST, as its protocol takes it; {m} is not used",
                                call.signing_name()
                            ),
                        );
                    }
                }
                if let Some(endpoint) = integration.get("x-edgeway-endpoint").and_then(Tree::as_str)
                {
                    aws.insert("endpoint".into(), endpoint.into());
                }
                self.mapping_fields(integration, at, &mut aws, true);
                if let Some(t) = timeout {
                    aws.insert("timeout_ms".into(), t.into());
                }
                out.insert("aws".into(), aws.into());
            }
            other => {
                self.error(
                    &at.child("type"),
                    format!("unknown integration type \"{other}\"; expected http_proxy, http, mock, aws_proxy or aws"),
                );
                return None;
            }
        }
        Some(out.into())
    }

    /// What every integration type may carry: the connection, TLS settings, credentials,
    /// cache keys.
    fn integration_common(&mut self, integration: &Tree, at: &At, route_params: &[(String, bool)]) {
        if integration
            .get("connectionType")
            .and_then(Tree::as_str)
            .is_some_and(|c| c.eq_ignore_ascii_case("VPC_LINK"))
        {
            self.warn(
                &at.child("connectionId"),
                "VPC links are not supported; the integration calls the URI directly",
            );
        }
        self.warn_if_present(integration, at, "tlsConfig", "not carried out: origins' certificates are checked against the upstream trust store (`upstream.ca_file`)");
        let aws_service = integration
            .get("type")
            .and_then(Tree::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("aws"));
        self.warn_if_present(
            integration,
            at,
            "credentials",
            if aws_service {
                "the IAM role is not assumed: Edgeway signs with keys the node holds (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or the route's `credentials`)"
            } else {
                "IAM credentials are not used: Edgeway calls the integration itself"
            },
        );
        if let Some(v) = integration
            .get("payloadFormatVersion")
            .and_then(Tree::as_text)
            && v != "1.0"
            && !integration
                .get("type")
                .and_then(Tree::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("aws_proxy"))
        {
            self.warn(
                &at.child("payloadFormatVersion"),
                format!("payload format {v} applies to Lambda proxy integrations only"),
            );
        }
        // API Gateway caches only on a stage with a cache cluster, which an export does not
        // carry; Edgeway refuses a route cache on an API without a stage cache, so the keys
        // are a hint for the user to apply with the stage's cache.
        let keys: Vec<String> = integration
            .get("cacheKeyParameters")
            .and_then(Tree::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(|k| {
                let key = k.as_str()?.strip_prefix("method.request.")?;
                let (place, name) = key.split_once('.')?;
                let known = match place {
                    "path" => route_params.iter().any(|(p, _)| p == name),
                    "querystring" | "header" => true,
                    _ => false,
                };
                known.then(|| key.to_owned())
            })
            .collect();
        if integration
            .get("cacheKeyParameters")
            .and_then(Tree::as_array)
            .is_some_and(|k| !k.is_empty())
        {
            self.warn(
                &at.child("cacheKeyParameters"),
                format!(
                    "caching is set per stage in Edgeway: with a stage `cache`, give this route `cache: {{ key: [{}] }}`{}",
                    keys.join(", "),
                    if integration.get("cacheNamespace").is_some() {
                        " (entries are kept per route: cacheNamespace is not carried out)"
                    } else {
                        ""
                    }
                ),
            );
        }
        for key in ["responseTransferMode", "integrationTarget"] {
            if integration.get(key).is_some() {
                self.warn(&at.child(key), "not supported; ignored");
            }
        }
    }

    /// An `http_proxy` URI in Edgeway's template form: `{name}` placeholders renamed to the
    /// route parameter their `integration.request.path.*` mapping reads (greedy ones as
    /// `{name+}`).
    fn proxy_uri(
        &mut self,
        uri: &str,
        integration: &Tree,
        at: &At,
        route_params: &[(String, bool)],
    ) -> Option<String> {
        self.note_stage_variables(uri);
        let mappings = integration
            .get("requestParameters")
            .and_then(Tree::as_object);
        let mut out = String::with_capacity(uri.len());
        let mut rest = uri;
        while let Some(open) = rest.find('{') {
            // `${stageVariables.x}` is Edgeway's form already.
            if open > 0 && rest.as_bytes()[open - 1] == b'$' {
                let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
                out.push_str(&rest[..close]);
                rest = &rest[close..];
                continue;
            }
            let Some(close) = rest[open..].find('}').map(|c| open + c) else {
                break;
            };
            out.push_str(&rest[..open]);
            let placeholder = rest[open + 1..close].trim_end_matches('+');
            let mapped = mappings
                .and_then(|m| m.get(&format!("integration.request.path.{placeholder}")))
                .and_then(Tree::as_str);
            let param = match mapped {
                Some(source) => match source.strip_prefix("method.request.path.") {
                    Some(p) => p.to_owned(),
                    None => {
                        self.error(
                            &at.child("requestParameters").child(&format!("integration.request.path.{placeholder}")),
                            format!("{source}: a proxy integration's path can take route path parameters only"),
                        );
                        return None;
                    }
                },
                None => placeholder.to_owned(),
            };
            match route_params.iter().find(|(p, _)| *p == param) {
                Some((p, greedy)) => {
                    out.push('{');
                    out.push_str(p);
                    if *greedy {
                        out.push('+');
                    }
                    out.push('}');
                }
                None => {
                    self.error(
                        &at.child("uri"),
                        format!("{{{placeholder}}} is not filled by a route path parameter"),
                    );
                    return None;
                }
            }
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        if let Some(mappings) = mappings {
            for (target, _) in mappings {
                if !target.starts_with("integration.request.path.") {
                    self.warn(
                        &at.child("requestParameters").child(target),
                        "parameter mappings other than path parameters are not carried out on a proxy integration",
                    );
                }
            }
        }
        Some(out)
    }

    /// Template and response fields on a proxy integration, which API Gateway does not apply
    /// either; a lone `default` response (every export has one) is passed over quietly.
    fn ignored_on_proxy(&mut self, integration: &Tree, at: &At) {
        for key in ["requestTemplates", "contentHandling"] {
            if integration.get(key).is_some() {
                self.warn(
                    &at.child(key),
                    "a proxy integration passes bodies through; ignored",
                );
            }
        }
        if let Some(responses) = integration.get("responses").and_then(Tree::as_object) {
            let trivial = responses.len() == 1
                && responses.get("default").is_some_and(|d| {
                    d.as_object()
                        .is_some_and(|o| o.keys().all(|k| k == "statusCode"))
                });
            if !trivial {
                self.warn(
                    &at.child("responses"),
                    "a proxy integration passes the origin's answer through; integration responses are ignored",
                );
            }
        }
    }

    /// Templates, passthrough, parameter mappings, content handling and responses of an
    /// `http` (`request_side` true) or `mock` integration.
    fn mapping_fields(&mut self, integration: &Tree, at: &At, out: &mut Object, http: bool) {
        if let Some(templates) = self.templates(
            integration.get("requestTemplates"),
            &at.child("requestTemplates"),
        ) {
            out.insert("request_templates".into(), templates);
        }
        if !http {
            self.mock_passthrough(integration, at);
        } else if let Some(p) = integration
            .get("passthroughBehavior")
            .and_then(Tree::as_str)
        {
            out.insert("passthrough".into(), p.to_ascii_lowercase().into());
        }
        if let Some(params) = integration
            .get("requestParameters")
            .and_then(Tree::as_object)
        {
            let mut mapped = Object::new();
            for (target, source) in params {
                let here = at.child("requestParameters").child(target);
                if !http {
                    self.warn(&here, "a mock makes no integration request; ignored");
                    continue;
                }
                if !target.starts_with("integration.request.") {
                    self.warn(&here, "HTTP API parameter mappings are not supported; REST's integration.request.* form is");
                    continue;
                }
                match source.as_str() {
                    Some(s) => {
                        mapped.insert(target.clone(), s.into());
                    }
                    None => self.error(&here, "expected a string"),
                }
            }
            if !mapped.is_empty() {
                out.insert("request_parameters".into(), mapped.into());
            }
        }
        if let Some(c) = integration.get("contentHandling").and_then(Tree::as_str) {
            if http {
                out.insert("content_handling".into(), c.to_ascii_lowercase().into());
            } else {
                self.warn(
                    &at.child("contentHandling"),
                    "a mock has no request body to convert; ignored",
                );
            }
        }
        let responses_at = at.child("responses");
        if let Some(responses) = integration.get("responses").and_then(Tree::as_object) {
            let mut list = Vec::new();
            for (pattern, r) in responses {
                let here = responses_at.child(pattern);
                let mut entry = Object::new();
                if pattern != "default" {
                    entry.insert("selection_pattern".into(), pattern.clone().into());
                }
                match r.get("statusCode").map(|s| (s, s.as_u64())) {
                    Some((_, Some(status))) => {
                        entry.insert("status".into(), status.into());
                    }
                    Some((s, None)) => {
                        self.error(
                            &here.child("statusCode"),
                            format!("expected a status code, not {}", s.kind()),
                        );
                        continue;
                    }
                    None => {}
                }
                if let Some(params) = r.get("responseParameters").and_then(Tree::as_object) {
                    entry.insert("response_parameters".into(), params.clone().into());
                }
                if let Some(templates) =
                    self.templates(r.get("responseTemplates"), &here.child("responseTemplates"))
                {
                    entry.insert("response_templates".into(), templates);
                }
                if r.get("contentHandling").is_some() {
                    self.warn(&here.child("contentHandling"), "response content handling is not carried out; the integration content_handling covers the request");
                }
                list.push(Tree::Object(entry));
            }
            if !list.is_empty() {
                out.insert("responses".into(), list.into());
            }
        }
    }

    /// A mock's `passthroughBehavior`: only the default, which refuses nothing, is carried out.
    fn mock_passthrough(&mut self, integration: &Tree, at: &At) {
        if let Some(p) = integration
            .get("passthroughBehavior")
            .and_then(Tree::as_str)
            && !p.eq_ignore_ascii_case("when_no_match")
        {
            self.warn(
                &at.child("passthroughBehavior"),
                "a mock answers from its templates and responses; passthrough does not apply",
            );
        }
    }

    /// A template map, each template parsed here so a broken one is named by its pointer.
    fn templates(&mut self, templates: Option<&Tree>, at: &At) -> Option<Tree> {
        let map = templates?.as_object()?;
        let mut out = Object::new();
        let limits = edgeway_velocity::Limits::default();
        for (media, text) in map {
            let here = at.child(media);
            let Some(text) = text.as_str() else {
                self.error(&here, "expected a template string");
                continue;
            };
            if let Err(e) = edgeway_velocity::Template::parse(text, &limits) {
                self.error(
                    &here,
                    format!(
                        "the template does not parse: line {}, column {}: {}",
                        e.line, e.column, e.message
                    ),
                );
                continue;
            }
            out.insert(media.clone(), text.into());
        }
        (!out.is_empty()).then(|| out.into())
    }

    fn note_stage_variables(&mut self, uri: &str) {
        let mut rest = uri;
        while let Some(at) = rest.find("${stageVariables.") {
            let after = &rest[at + "${stageVariables.".len()..];
            let end = after.find('}').unwrap_or(after.len());
            self.stage_variables.insert(after[..end].to_owned());
            rest = &after[end..];
        }
    }
}

/// A mock that answers one fixed response, as Edgeway's plain `mock: { status, headers, body }`:
/// the request template is exactly `{"statusCode": N}`, there is one `default` response of
/// that status, its headers are static, and its one template (application/json) has no
/// Velocity in it. This is the form CORS preflight mocks take in REST exports, and the form
/// an export gives a plain mock.
fn plain_mock(integration: &Tree) -> Option<Object> {
    let request = integration.get("requestTemplates")?.as_object()?;
    let [(media, template)] = request.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let parsed: serde_json::Value = serde_json::from_str(template.as_str()?).ok()?;
    let status = parsed
        .as_object()
        .filter(|o| o.len() == 1)?
        .get("statusCode")?
        .as_u64()?;
    let responses = integration.get("responses")?.as_object()?;
    let [(key, response)] = responses.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let response = response.as_object()?;
    if media != "application/json"
        || key != "default"
        || response.get("statusCode")?.as_u64()? != status
        || response.keys().any(|k| {
            !matches!(
                k.as_str(),
                "statusCode" | "responseParameters" | "responseTemplates"
            )
        })
    {
        return None;
    }
    let mut headers = Object::new();
    for (target, source) in response
        .get("responseParameters")
        .and_then(Tree::as_object)
        .into_iter()
        .flatten()
    {
        let name = target.strip_prefix("method.response.header.")?;
        headers.insert(name.to_owned(), static_value(source.as_str()?)?.into());
    }
    let body = match response.get("responseTemplates").and_then(Tree::as_object) {
        None => None,
        Some(t) if t.is_empty() => None,
        Some(t) => {
            let [(media, body)] = t.iter().collect::<Vec<_>>()[..] else {
                return None;
            };
            let body = body.as_str()?;
            if media != "application/json" || body.contains(['$', '#']) {
                return None;
            }
            Some(body)
        }
    };
    let mut mock = Object::new();
    mock.insert("status".into(), status.into());
    if !headers.is_empty() {
        mock.insert("headers".into(), headers.into());
    }
    if let Some(body) = body {
        mock.insert("body".into(), body.into());
    }
    Some(mock)
}

fn jwt_settings(issuer: &str, audiences: Vec<Tree>) -> Object {
    let mut jwt = Object::new();
    jwt.insert("issuer".into(), issuer.into());
    if !audiences.is_empty() {
        jwt.insert("audiences".into(), audiences.into());
    }
    jwt.insert(
        "jwks_url".into(),
        format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')).into(),
    );
    jwt
}

/// `arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL` → the pool's token issuer.
fn cognito_issuer(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:aws:cognito-idp:")?;
    let mut parts = rest.split(':');
    let region = parts.next().filter(|r| !r.is_empty())?;
    let _account = parts.next()?;
    let pool = parts.next()?.strip_prefix("userpool/")?;
    Some(format!("https://cognito-idp.{region}.amazonaws.com/{pool}"))
}

/// The function ARN in a Lambda invocation URI, or the URI itself when it is a function ARN.
fn lambda_arn(uri: &str) -> Option<&str> {
    if uri.starts_with("arn:aws:lambda:") {
        return Some(uri);
    }
    let start = uri.find("/functions/")? + "/functions/".len();
    let end = uri.rfind("/invocations")?;
    (end > start).then(|| &uri[start..end])
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME` → (REGION, ACCOUNT).
fn arn_region_account(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.split(':').skip(3);
    let (region, account) = (parts.next()?, parts.next()?);
    (!region.is_empty() && !account.is_empty()).then_some((region, account))
}

/// An authorizer identity source in Edgeway's short form (`header.authorization`).
fn identity_source(source: &str) -> Option<String> {
    let rest = source
        .strip_prefix("method.request.")
        .or_else(|| source.strip_prefix("$request."))
        .or_else(|| source.strip_prefix("route.request."));
    if let Some(rest) = rest {
        let (kind, name) = rest.split_once('.')?;
        return match kind {
            "header" => Some(format!("header.{}", name.to_ascii_lowercase())),
            "querystring" => Some(format!("query.{name}")),
            "path" => Some(format!("path.{name}")),
            _ => None,
        };
    }
    let name = source
        .strip_prefix("stageVariables.")
        .or_else(|| source.strip_prefix("$stageVariables."))?;
    Some(format!("stage.{name}"))
}

/// `'text'` → `text`: API Gateway's static mapping value.
fn static_value(source: &str) -> Option<&str> {
    source.strip_prefix('\'')?.strip_suffix('\'')
}
