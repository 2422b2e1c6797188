//! Edgeway API definition → OpenAPI document, for client generators, docs pages and contract
//! tests, and (with API Gateway's extensions) for importing again: an import of the export
//! gives back the definition it was made from.
//!
//! The document is OpenAPI 3.0.3, or 3.1.0 when the API's models are JSON Schema 2020-12 (as
//! an API imported from 3.1 has), since 3.0's schema dialect cannot hold them. Models become
//! `components.schemas`, with the definitions each carries hoisted beside it.
//!
//! What an API Gateway document has no place for stays in Edgeway's config: throttles, route
//! caches, transforms, isolation, IP policies, and an authorizer's Edgeway-only settings
//! (headers it sets). Two Edgeway settings that an import cannot derive travel as Edgeway's
//! own extensions: a SigV4 authorizer's regions (`x-edgeway-regions`), a JWT authorizer's
//! key URL (`x-edgeway-jwks-url`), a function given Edgeway's request record rather than a
//! proxy event (`x-edgeway-payload: edgeway`), a plugin authorizer rather than a Lambda one
//! (`x-edgeway-plugin: true`) and a Lambda authorizer's API id (`x-edgeway-api-id`).

use std::collections::BTreeMap;
use std::path::Path;

use indexmap::IndexMap;

use crate::config::raw::{
    RawApi, RawAuthorizer, RawHttp, RawIntegration, RawIntegrationResponse, RawMock, RawRoute,
    RawSchemaSource,
};
use crate::openapi::tree::{Object, Tree};
use crate::openapi::{NOT_A_MODEL, path_params};

/// What an export is for.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The stage the document describes (its `servers` entry).
    pub stage: String,
    /// Where the stage is served, without the stage (`https://api.example.com`); by default
    /// the server URL is relative (`/prod`), which is right for a docs page the gateway serves.
    pub server_url: Option<String>,
    /// With API Gateway's `x-amazon-apigateway-*` extensions (and Edgeway's), so that the
    /// document imports again as the same API; without, a plain OpenAPI document for clients.
    pub extensions: bool,
    /// The config's `origin`, substituted for `${origin}` in integration URIs.
    pub origin: Option<String>,
}

/// The region written into function ARNs when no SigV4 authorizer names one.
const DEFAULT_REGION: &str = "us-east-1";
/// The route methods an `ANY` route stands for in a document without extensions.
const ANY_METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

/// The API as an OpenAPI document. `base_dir` anchors models read from files.
pub fn export(api: &RawApi, options: &ExportOptions, base_dir: &Path) -> Tree {
    Exporter::new(api, options, base_dir).run()
}

struct Exporter<'a> {
    api: &'a RawApi,
    options: &'a ExportOptions,
    base_dir: &'a Path,
    /// `#/components/schemas` (3.0) or the same under 3.1.
    schemas: Object,
    /// Request validators used, by name: (body, parameters).
    validators: BTreeMap<&'static str, (bool, bool)>,
    region: String,
    openapi31: bool,
}

impl<'a> Exporter<'a> {
    fn new(api: &'a RawApi, options: &'a ExportOptions, base_dir: &'a Path) -> Self {
        let region = api
            .authorizers
            .values()
            .filter_map(|a| a.value.sigv4.as_ref())
            .find_map(|s| s.value.regions.first().map(|r| r.value.clone()))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let openapi31 = api.models.values().any(|m| {
            model_schema(&m.value, base_dir)
                .and_then(|s| s.get("$schema").and_then(Tree::as_str).map(is_2020_12))
                .unwrap_or(false)
        });
        Self {
            api,
            options,
            base_dir,
            schemas: Object::new(),
            validators: BTreeMap::new(),
            region,
            openapi31,
        }
    }

    fn run(mut self) -> Tree {
        let api = self.api;
        let ext = self.options.extensions;
        let mut doc = Object::new();
        doc.insert(
            "openapi".into(),
            if self.openapi31 { "3.1.0" } else { "3.0.3" }.into(),
        );
        let mut info = Object::new();
        info.insert("title".into(), api.name.value.clone().into());
        info.insert("version".into(), self.options.stage.clone().into());
        doc.insert("info".into(), info.into());
        let mut server = Object::new();
        let base = self
            .options
            .server_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/');
        server.insert(
            "url".into(),
            format!("{base}/{}", self.options.stage).into(),
        );
        doc.insert("servers".into(), vec![Tree::from(server)].into());

        for (name, model) in &api.models {
            if let Some(schema) = model_schema(&model.value, self.base_dir) {
                self.add_schema(name, schema);
            }
        }
        let paths = self.paths();

        if ext {
            if let Some(source) = &api.api_key_source {
                let source = source.value.trim().to_ascii_uppercase();
                doc.insert("x-amazon-apigateway-api-key-source".into(), source.into());
            }
            if let Some(cors) = &api.cors {
                doc.insert(
                    "x-amazon-apigateway-cors".into(),
                    cors_extension(&cors.value),
                );
            }
            if !api.gateway_responses.is_empty() {
                doc.insert(
                    "x-amazon-apigateway-gateway-responses".into(),
                    self.gateway_responses(),
                );
            }
            if !self.validators.is_empty() {
                let validators: Object = self
                    .validators
                    .iter()
                    .map(|(name, (body, params))| {
                        let mut v = Object::new();
                        v.insert("validateRequestBody".into(), (*body).into());
                        v.insert("validateRequestParameters".into(), (*params).into());
                        ((*name).to_owned(), v.into())
                    })
                    .collect();
                doc.insert(
                    "x-amazon-apigateway-request-validators".into(),
                    validators.into(),
                );
            }
        }
        doc.insert("paths".into(), paths.into());
        let mut components = Object::new();
        if !self.schemas.is_empty() {
            components.insert("schemas".into(), std::mem::take(&mut self.schemas).into());
        }
        let schemes = self.security_schemes();
        if !schemes.is_empty() {
            components.insert("securitySchemes".into(), schemes.into());
        }
        if !components.is_empty() {
            doc.insert("components".into(), components.into());
        }
        doc.into()
    }

    /// Adds a model to `components.schemas`, its definitions hoisted beside it.
    fn add_schema(&mut self, name: &str, schema: Tree) {
        let main = self.hoist(name, schema);
        self.schemas.insert(name.to_owned(), main);
    }

    /// A schema as the document holds it, its definitions (`definitions`, `$defs`) moved to
    /// `components.schemas`. A definition that is one of the API's models (the same schema
    /// under the same name) becomes a reference to it; any other is marked
    /// `x-edgeway-model: false`, so an import brings it into the models that use it without
    /// making it a model of its own; a name taken by a different schema gets `owner_` in front.
    fn hoist(&mut self, owner: &str, schema: Tree) -> Tree {
        let Tree::Object(mut map) = schema else {
            return schema;
        };
        let mut renames = BTreeMap::new();
        let mut hoisted = Vec::new();
        for key in ["definitions", "$defs"] {
            if let Some(Tree::Object(defs)) = map.shift_remove(key) {
                for (def_name, def) in defs {
                    let model = self
                        .api
                        .models
                        .get(&def_name)
                        .and_then(|m| model_schema(&m.value, self.base_dir));
                    let target = if model.is_some_and(|m| bare(&m) == bare(&def)) {
                        def_name.clone()
                    } else {
                        let taken = self.schemas.contains_key(&def_name)
                            || self.api.models.contains_key(&def_name);
                        let target = if taken {
                            format!("{owner}_{def_name}")
                        } else {
                            def_name.clone()
                        };
                        hoisted.push((key, target.clone(), def));
                        target
                    };
                    renames.insert(format!("#/{key}/{def_name}"), target);
                }
            }
        }
        if !self.openapi31 {
            map.shift_remove("$schema");
        }
        for (from, target, def) in hoisted {
            let mut def = self.schema_for_document(&def, &renames, from);
            if let Tree::Object(def) = &mut def {
                def.insert(NOT_A_MODEL.into(), false.into());
            }
            self.schemas.insert(target, def);
        }
        self.schema_for_document(&Tree::Object(map), &renames, "definitions")
    }

    /// A schema as the document holds it: references to hoisted definitions pointed at
    /// `components.schemas`, and (for 3.0) `type: [T, "null"]` written as `nullable`.
    fn schema_for_document(
        &self,
        schema: &Tree,
        renames: &BTreeMap<String, String>,
        defs_key: &str,
    ) -> Tree {
        match schema {
            Tree::Object(map) => {
                let mut out = Object::new();
                for (key, value) in map {
                    if key == "$ref"
                        && let Some(reference) = value.as_str()
                    {
                        let target = renames.get(reference).cloned().or_else(|| {
                            reference
                                .strip_prefix(&format!("#/{defs_key}/"))
                                .map(str::to_owned)
                        });
                        let reference = match target {
                            Some(name) => format!("#/components/schemas/{name}"),
                            None => reference.to_owned(),
                        };
                        out.insert(key.clone(), reference.into());
                        continue;
                    }
                    if key == "type"
                        && !self.openapi31
                        && let Some([Tree::String(kind), Tree::String(null)]) =
                            value.as_array().map(|a| a.iter().as_slice())
                        && null == "null"
                    {
                        out.insert("type".into(), kind.clone().into());
                        out.insert("nullable".into(), true.into());
                        continue;
                    }
                    out.insert(
                        key.clone(),
                        self.schema_for_document(value, renames, defs_key),
                    );
                }
                Tree::Object(out)
            }
            Tree::Array(items) => Tree::Array(
                items
                    .iter()
                    .map(|i| self.schema_for_document(i, renames, defs_key))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn paths(&mut self) -> Object {
        let mut paths: IndexMap<String, Object> = IndexMap::new();
        for route in &self.api.routes {
            let Some((method, path)) = route.route.value.trim().split_once(' ') else {
                continue;
            };
            let path = path.trim().to_owned();
            let method = method.trim().to_ascii_uppercase();
            let op = self.operation(route, &method, &path);
            // A greedy parameter is API Gateway's `{proxy+}`; plain OpenAPI has no such
            // form, so a document for clients names it `{proxy}`.
            let path = if self.options.extensions {
                path
            } else {
                path.replace("+}", "}")
            };
            let item = paths.entry(path.clone()).or_default();
            if method == "ANY" {
                if self.options.extensions {
                    item.insert("x-amazon-apigateway-any-method".into(), op);
                } else {
                    for m in ANY_METHODS {
                        item.entry(m.to_owned()).or_insert_with(|| {
                            let mut op = op.clone();
                            if let Tree::Object(map) = &mut op {
                                map.insert("operationId".into(), operation_id(m, &path).into());
                            }
                            op
                        });
                    }
                }
            } else {
                // An explicit method wins over what an ANY route filled in.
                item.insert(method.to_ascii_lowercase(), op);
            }
        }
        paths
            .into_iter()
            .map(|(p, item)| (p, item.into()))
            .collect()
    }

    fn operation(&mut self, route: &RawRoute, method: &str, path: &str) -> Tree {
        let ext = self.options.extensions;
        let mut op = Object::new();
        op.insert("operationId".into(), operation_id(method, path).into());
        let mut parameters = Vec::new();
        for (name, greedy) in path_params(path) {
            let mut p = Object::new();
            // The name the path template spells: `proxy+` in API Gateway's `{proxy+}`.
            let name = if greedy && ext {
                format!("{name}+")
            } else {
                name
            };
            p.insert("name".into(), name.into());
            if greedy {
                p.insert(
                    "description".into(),
                    "The rest of the path; it may contain `/`.".into(),
                );
            }
            p.insert("in".into(), "path".into());
            p.insert("required".into(), true.into());
            p.insert("schema".into(), string_schema());
            parameters.push(Tree::from(p));
        }
        let validation = route.validation.as_ref().map(|v| &v.value);
        for required in validation
            .map(|v| v.required.as_slice())
            .unwrap_or_default()
        {
            let text = required.value.trim();
            let text = text.strip_prefix("method.request.").unwrap_or(text);
            let Some((place, name)) = text.split_once('.') else {
                continue;
            };
            let place = match place {
                "query" | "querystring" => "query",
                "header" => "header",
                _ => continue,
            };
            let mut p = Object::new();
            p.insert("name".into(), name.into());
            p.insert("in".into(), place.into());
            p.insert("required".into(), true.into());
            p.insert("schema".into(), string_schema());
            parameters.push(p.into());
        }
        if !parameters.is_empty() {
            op.insert("parameters".into(), parameters.into());
        }
        if let Some(body) = validation.and_then(|v| v.body.as_ref()) {
            let schema = match &body.value.model {
                Some(model) => {
                    let mut r = Object::new();
                    r.insert(
                        "$ref".into(),
                        format!("#/components/schemas/{}", model.value.trim()).into(),
                    );
                    Some(Tree::from(r))
                }
                // An inline schema stays inline; its definitions live in components.
                None => model_schema(&body.value, self.base_dir)
                    .map(|schema| self.hoist(&operation_id(method, path), schema)),
            };
            if let Some(schema) = schema {
                let mut media = Object::new();
                media.insert("schema".into(), schema);
                let mut content = Object::new();
                content.insert("application/json".into(), media.into());
                let mut request_body = Object::new();
                request_body.insert("content".into(), content.into());
                request_body.insert("required".into(), true.into());
                op.insert("requestBody".into(), request_body.into());
            }
        }
        op.insert("responses".into(), self.responses(route));
        let mut requirement = Object::new();
        if let Some(auth) = &route.auth {
            let scopes: Vec<Tree> = route
                .scopes
                .as_ref()
                .map(|s| s.value.iter().map(|s| Tree::from(s.as_str())).collect())
                .unwrap_or_default();
            requirement.insert(auth.value.trim().to_owned(), scopes.into());
        }
        if route.api_key_required {
            requirement.insert(API_KEY_SCHEME.into(), Vec::<Tree>::new().into());
        }
        if !requirement.is_empty() {
            op.insert("security".into(), vec![Tree::from(requirement)].into());
        }
        if ext {
            if let Some(v) = validation {
                let mode = v.validate.as_ref().map_or("all", |m| m.value.trim());
                let (name, flags) = match mode {
                    "body" => ("body", (true, false)),
                    "parameters" => ("parameters", (false, true)),
                    _ => ("all", (true, true)),
                };
                self.validators.insert(name, flags);
                op.insert("x-amazon-apigateway-request-validator".into(), name.into());
            }
            let integration = self.integration(route, method, path);
            op.insert("x-amazon-apigateway-integration".into(), integration);
        }
        op.into()
    }

    /// `x-amazon-apigateway-integration` for a route.
    fn integration(&self, route: &RawRoute, method: &str, path: &str) -> Tree {
        let RawIntegration {
            http_proxy,
            http,
            function,
            mock,
            aws,
        } = &route.integration.value;
        let mut out = Object::new();
        let timeout = route.timeout_ms.as_ref().map(|t| t.value);
        if let Some(uri) = http_proxy {
            out.insert("type".into(), "http_proxy".into());
            out.insert("httpMethod".into(), method.into());
            let (uri, mappings) = proxy_uri(&self.substitute(&uri.value), path);
            out.insert("uri".into(), uri.into());
            if !mappings.is_empty() {
                out.insert("requestParameters".into(), mappings.into());
            }
            if let Some(t) = timeout {
                out.insert("timeoutInMillis".into(), t.into());
            }
        } else if let Some(http) = http {
            self.http_integration(&http.value, method, &mut out);
        } else if let Some(function) = function {
            out.insert("type".into(), "aws_proxy".into());
            out.insert("httpMethod".into(), "POST".into());
            out.insert(
                "uri".into(),
                self.function_uri(function.value.plugin.trim()).into(),
            );
            let payload = function.value.payload.as_deref().map(str::trim);
            match payload.and_then(crate::lambda::ProxyFormat::from_payload) {
                Some(format) => {
                    out.insert("payloadFormatVersion".into(), format.version().into());
                }
                // A handler given Edgeway's request record: API Gateway has no such thing.
                _ => {
                    out.insert("x-edgeway-payload".into(), "edgeway".into());
                }
            }
            if let Some(t) = timeout {
                out.insert("timeoutInMillis".into(), t.into());
            }
        } else if let Some(mock) = mock {
            mock_integration(mock, &mut out);
        } else if let Some(aws) = aws {
            aws_integration(&aws.value, &mut out);
        }
        out.into()
    }

    fn http_integration(&self, http: &RawHttp, method: &str, out: &mut Object) {
        out.insert("type".into(), "http".into());
        let integration_method = http.method.as_ref().map_or_else(
            || method.to_owned(),
            |m| m.value.trim().to_ascii_uppercase(),
        );
        out.insert("httpMethod".into(), integration_method.into());
        out.insert("uri".into(), self.substitute(&http.uri.value).into());
        mapping_fields(http.mapping_fields(), http.timeout_ms.as_ref(), out);
    }

    /// `${origin}` replaced by the config's origin (stage variables stay: they are the stage's).
    fn substitute(&self, uri: &str) -> String {
        match &self.options.origin {
            Some(origin) => uri.replace("${origin}", origin.trim_end_matches('/')),
            None => uri.to_owned(),
        }
    }

    fn function_uri(&self, plugin: &str) -> String {
        lambda_uri(&self.region, crate::auth::DEFAULT_ARN_ACCOUNT, plugin)
    }

    fn gateway_responses(&self) -> Tree {
        let mut out = Object::new();
        for (kind, r) in &self.api.gateway_responses {
            let r = &r.value;
            let mut entry = Object::new();
            if let Some(s) = &r.status {
                entry.insert("statusCode".into(), s.value.to_string().into());
            }
            if !r.headers.is_empty() {
                let params: Object = r
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            format!("gatewayresponse.header.{k}"),
                            Tree::from(format!("'{}'", v.value)),
                        )
                    })
                    .collect();
                entry.insert("responseParameters".into(), params.into());
            }
            if let Some(body) = &r.body {
                let mut t = Object::new();
                t.insert("application/json".into(), body.value.as_str().into());
                entry.insert("responseTemplates".into(), t.into());
            }
            out.insert(kind.clone(), entry.into());
        }
        out.into()
    }

    fn security_schemes(&self) -> Object {
        let ext = self.options.extensions;
        let mut schemes = Object::new();
        for (name, a) in &self.api.authorizers {
            schemes.insert(name.clone(), self.security_scheme(&a.value, ext));
        }
        let wants_key = self.api.routes.iter().any(|r| r.api_key_required);
        if wants_key {
            let mut key = Object::new();
            key.insert("type".into(), "apiKey".into());
            key.insert("name".into(), "x-api-key".into());
            key.insert("in".into(), "header".into());
            schemes.insert(API_KEY_SCHEME.into(), key.into());
        }
        schemes
    }

    fn security_scheme(&self, a: &RawAuthorizer, ext: bool) -> Tree {
        let mut scheme = Object::new();
        if let Some(jwt) = &a.jwt {
            let jwt = &jwt.value;
            if !ext {
                scheme.insert("type".into(), "http".into());
                scheme.insert("scheme".into(), "bearer".into());
                scheme.insert("bearerFormat".into(), "JWT".into());
                return scheme.into();
            }
            scheme.insert("type".into(), "oauth2".into());
            scheme.insert("flows".into(), Object::new().into());
            let mut config = Object::new();
            config.insert("issuer".into(), jwt.issuer.value.as_str().into());
            if !jwt.audiences.is_empty() {
                let audiences: Vec<Tree> = jwt
                    .audiences
                    .iter()
                    .map(|a| Tree::from(a.value.as_str()))
                    .collect();
                config.insert("audience".into(), audiences.into());
            }
            let mut authorizer = Object::new();
            authorizer.insert("type".into(), "jwt".into());
            authorizer.insert(
                "identitySource".into(),
                identity_sources(a, "$request.").into(),
            );
            authorizer.insert("jwtConfiguration".into(), config.into());
            scheme.insert("x-amazon-apigateway-authorizer".into(), authorizer.into());
            let derived = format!(
                "{}/.well-known/jwks.json",
                jwt.issuer.value.trim().trim_end_matches('/')
            );
            if jwt.jwks_url.value.trim() != derived {
                scheme.insert(
                    "x-edgeway-jwks-url".into(),
                    jwt.jwks_url.value.trim().into(),
                );
            }
            return scheme.into();
        }
        scheme.insert("type".into(), "apiKey".into());
        scheme.insert("name".into(), "Authorization".into());
        scheme.insert("in".into(), "header".into());
        if let Some(sigv4) = &a.sigv4 {
            if ext {
                scheme.insert("x-amazon-apigateway-authtype".into(), "awsSigv4".into());
                let regions: Vec<Tree> = sigv4
                    .value
                    .regions
                    .iter()
                    .map(|r| Tree::from(r.value.as_str()))
                    .collect();
                scheme.insert("x-edgeway-regions".into(), regions.into());
            }
            return scheme.into();
        }
        // A plugin authorizer: a Lambda REQUEST authorizer to API Gateway.
        let sources: Vec<&str> = a.identity_source.iter().map(|s| s.value.trim()).collect();
        if let [single] = sources.as_slice()
            && let Some(header) = single.strip_prefix("header.")
        {
            scheme.insert("name".into(), header.into());
        } else if !sources.is_empty() {
            scheme.insert("name".into(), "Unused".into());
        }
        let (kind, uri) = match (&a.plugin, &a.lambda) {
            (Some(plugin), _) => ("request", self.function_uri(plugin.value.trim())),
            (None, Some(lambda)) => {
                let l = &lambda.value;
                let region = l
                    .region
                    .as_ref()
                    .map_or(self.region.as_str(), |r| r.value.trim());
                let account = l
                    .account_id
                    .as_ref()
                    .map_or(crate::auth::DEFAULT_ARN_ACCOUNT, |a| a.value.trim());
                let kind = if l.input.value.trim().eq_ignore_ascii_case("token") {
                    "token"
                } else {
                    "request"
                };
                (kind, lambda_uri(region, account, l.plugin.value.trim()))
            }
            (None, None) => return scheme.into(),
        };
        if ext {
            scheme.insert("x-amazon-apigateway-authtype".into(), "custom".into());
            let mut authorizer = Object::new();
            authorizer.insert("type".into(), kind.into());
            authorizer.insert("authorizerUri".into(), uri.into());
            match &a.lambda {
                // An Edgeway plugin authorizer, not a Lambda one: marked so it imports back.
                None => {
                    authorizer.insert("x-edgeway-plugin".into(), true.into());
                }
                Some(lambda) => {
                    if let Some(api_id) = &lambda.value.api_id {
                        authorizer.insert("x-edgeway-api-id".into(), api_id.value.trim().into());
                    }
                }
            }
            if !a.identity_source.is_empty() {
                authorizer.insert(
                    "identitySource".into(),
                    identity_sources(a, "method.request.").into(),
                );
            }
            if let Some(ttl) = &a.result_ttl_s {
                authorizer.insert("authorizerResultTtlInSeconds".into(), ttl.value.into());
            }
            scheme.insert("x-amazon-apigateway-authorizer".into(), authorizer.into());
        }
        scheme.into()
    }
}

/// The invocation URI of Lambda function `name` in `region` and `account`.
fn lambda_uri(region: &str, account: &str, name: &str) -> String {
    format!(
        "arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/arn:aws:lambda:{region}:{account}:function:{name}/invocations"
    )
}

/// The security scheme name of the API key.
const API_KEY_SCHEME: &str = "api_key";

fn is_2020_12(schema: &str) -> bool {
    schema.contains("2020-12")
}

fn string_schema() -> Tree {
    let mut s = Object::new();
    s.insert("type".into(), "string".into());
    s.into()
}

/// A model's JSON Schema: inline, or read from its file (a file that cannot be read was
/// refused when the config loaded).
fn model_schema(source: &RawSchemaSource, base_dir: &Path) -> Option<Tree> {
    if let Some(schema) = &source.schema {
        return Some(Tree::from_json(schema));
    }
    let file = source.file.as_ref()?;
    let text = std::fs::read(base_dir.join(file.value.trim())).ok()?;
    serde_json::from_slice::<Tree>(&text).ok()
}

/// `GET /pets/{id}` → `getPetsId`: a stable name client generators give the call.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for word in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// An Edgeway proxy URI (`{id}`, `{proxy+}` name route parameters) in API Gateway's form:
/// `{name}` placeholders with `integration.request.path.name` ← `method.request.path.name`.
fn proxy_uri(uri: &str, path: &str) -> (String, Object) {
    let mut mappings = Object::new();
    let mut out = uri.to_owned();
    for (name, greedy) in path_params(path) {
        let edgeway = if greedy {
            format!("{{{name}+}}")
        } else {
            format!("{{{name}}}")
        };
        if out.contains(&edgeway) {
            out = out.replace(&edgeway, &format!("{{{name}}}"));
            mappings.insert(
                format!("integration.request.path.{name}"),
                format!("method.request.path.{name}").into(),
            );
        }
    }
    (out, mappings)
}

fn identity_sources(a: &RawAuthorizer, prefix: &str) -> String {
    let sources: Vec<String> = a
        .identity_source
        .iter()
        .filter_map(|s| {
            let (kind, name) = s.value.trim().split_once('.')?;
            Some(match (kind, prefix) {
                ("header", _) => format!("{prefix}header.{name}"),
                ("query" | "querystring", _) => format!("{prefix}querystring.{name}"),
                ("path", _) => format!("{prefix}path.{name}"),
                ("stage" | "stageVariables", "$request.") => format!("$stageVariables.{name}"),
                ("stage" | "stageVariables", _) => format!("stageVariables.{name}"),
                _ => return None,
            })
        })
        .collect();
    if sources.is_empty() {
        format!("{prefix}header.Authorization")
    } else {
        sources.join(", ")
    }
}

fn templates(map: &IndexMap<String, serde_saphyr::Spanned<String>>) -> Tree {
    map.iter()
        .map(|(k, v)| (k.clone(), Tree::from(v.value.as_str())))
        .collect::<Object>()
        .into()
}

fn integration_responses(responses: &[serde_saphyr::Spanned<RawIntegrationResponse>]) -> Tree {
    let mut out = Object::new();
    for r in responses {
        let r = &r.value;
        let key = r
            .selection_pattern
            .as_ref()
            .map_or_else(|| "default".to_owned(), |p| p.value.clone());
        let mut entry = Object::new();
        entry.insert(
            "statusCode".into(),
            r.status
                .as_ref()
                .map_or(200, |s| s.value)
                .to_string()
                .into(),
        );
        if !r.response_parameters.is_empty() {
            let params: Object = r
                .response_parameters
                .iter()
                .map(|(k, v)| (k.clone(), Tree::from(v.value.as_str())))
                .collect();
            entry.insert("responseParameters".into(), params.into());
        }
        if !r.response_templates.is_empty() {
            entry.insert("responseTemplates".into(), templates(&r.response_templates));
        }
        out.insert(key, entry.into());
    }
    out.into()
}

/// A mock in API Gateway's form. A plain Edgeway mock (status, headers, body) is the request
/// template `{"statusCode": N}` and one default response with static headers and the body as
/// its template, which an import reads back as the plain mock.
fn mock_integration(mock: &RawMock, out: &mut Object) {
    out.insert("type".into(), "mock".into());
    if !mock.request_templates.is_empty() || !mock.responses.is_empty() {
        if !mock.request_templates.is_empty() {
            out.insert(
                "requestTemplates".into(),
                templates(&mock.request_templates),
            );
        }
        if !mock.responses.is_empty() {
            out.insert("responses".into(), integration_responses(&mock.responses));
        }
        return;
    }
    let status = mock.status.as_ref().map_or(200, |s| s.value);
    let mut request = Object::new();
    request.insert(
        "application/json".into(),
        format!("{{\"statusCode\": {status}}}").into(),
    );
    out.insert("requestTemplates".into(), request.into());
    let mut response = Object::new();
    response.insert("statusCode".into(), status.to_string().into());
    if !mock.headers.is_empty() {
        let params: Object = mock
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    format!("method.response.header.{k}"),
                    Tree::from(format!("'{v}'")),
                )
            })
            .collect();
        response.insert("responseParameters".into(), params.into());
    }
    if !mock.body.is_empty() {
        let mut t = Object::new();
        t.insert("application/json".into(), mock.body.as_str().into());
        response.insert("responseTemplates".into(), t.into());
    }
    let mut responses = Object::new();
    responses.insert("default".into(), response.into());
    out.insert("responses".into(), responses.into());
}

/// The schema of the gateway's own error bodies (`{"message": "..."}`).
const GATEWAY_ERROR: &str = "GatewayError";

/// A model's schema without what `hoist` moves or drops, to compare with a definition.
fn bare(schema: &Tree) -> Tree {
    match schema {
        Tree::Object(map) => Tree::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "definitions" | "$defs" | "$schema"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Exporter<'_> {
    /// The method responses a document lists: the statuses a mapped or mock integration
    /// answers with (or `default` for a proxy, whose statuses are the origin's), and the
    /// gateway's own answers that the route's settings make possible, so that a contract
    /// test holds the gateway to what it documents.
    fn responses(&mut self, route: &RawRoute) -> Tree {
        let mut out = integration_statuses(&route.integration.value);
        let mut own: Vec<(&str, &str)> = Vec::new();
        if route.validation.is_some() {
            own.push((
                "400",
                "The request is not valid (`BAD_REQUEST_PARAMETERS`, `BAD_REQUEST_BODY`)",
            ));
        }
        if route.auth.is_some() {
            own.push(("401", "No credentials (`UNAUTHORIZED`)"));
            own.push(("403", "The credentials are refused (`ACCESS_DENIED`)"));
        } else if route.api_key_required {
            own.push((
                "403",
                "No API key, or one that may not call the stage (`INVALID_API_KEY`, `FORBIDDEN`)",
            ));
        }
        if let Some(http) = &route.integration.value.http
            && !http.value.request_templates.is_empty()
        {
            own.push((
                "415",
                "No mapping template for the request's content type (`UNSUPPORTED_MEDIA_TYPE`)",
            ));
        }
        own.push((
            "429",
            "Throttled or over quota (`THROTTLED`, `QUOTA_EXCEEDED`)",
        ));
        if !out.contains_key("default") {
            for (status, description) in own {
                if out.contains_key(status) {
                    continue;
                }
                let mut r = Object::new();
                r.insert("description".into(), description.into());
                r.insert("content".into(), self.gateway_error_content());
                out.insert(status.to_owned(), r.into());
            }
        }
        out.into()
    }

    /// `application/json` with the gateway error schema (added to the components once).
    fn gateway_error_content(&mut self) -> Tree {
        if !self.schemas.contains_key(GATEWAY_ERROR) {
            let mut message = Object::new();
            message.insert("type".into(), "string".into());
            let mut properties = Object::new();
            properties.insert("message".into(), message.into());
            let mut schema = Object::new();
            schema.insert("type".into(), "object".into());
            schema.insert("properties".into(), properties.into());
            schema.insert(NOT_A_MODEL.into(), false.into());
            self.schemas.insert(GATEWAY_ERROR.into(), schema.into());
        }
        let mut reference = Object::new();
        reference.insert(
            "$ref".into(),
            format!("#/components/schemas/{GATEWAY_ERROR}").into(),
        );
        let mut media = Object::new();
        media.insert("schema".into(), reference.into());
        let mut content = Object::new();
        content.insert("application/json".into(), media.into());
        content.into()
    }
}

/// The statuses a mapped or mock integration answers with, or `default` for a proxy, whose
/// statuses are the origin's.
fn integration_statuses(integration: &RawIntegration) -> Object {
    let statuses: Vec<u16> = match (&integration.http, &integration.mock) {
        (Some(http), _) => http
            .value
            .responses
            .iter()
            .map(|r| r.value.status.as_ref().map_or(200, |s| s.value))
            .collect(),
        (_, Some(mock)) if !mock.responses.is_empty() => mock
            .responses
            .iter()
            .map(|r| r.value.status.as_ref().map_or(200, |s| s.value))
            .collect(),
        (_, Some(mock)) if mock.request_templates.is_empty() => {
            vec![mock.status.as_ref().map_or(200, |s| s.value)]
        }
        _ => Vec::new(),
    };
    let mut out = Object::new();
    for status in statuses {
        let mut r = Object::new();
        r.insert("description".into(), format!("Status {status}").into());
        out.insert(status.to_string(), r.into());
    }
    if out.is_empty() {
        let mut r = Object::new();
        r.insert("description".into(), "The integration's answer".into());
        out.insert("default".into(), r.into());
    }
    out
}

fn cors_extension(cors: &crate::config::raw::RawCors) -> Tree {
    let list = |items: &[serde_saphyr::Spanned<String>]| -> Tree {
        items
            .iter()
            .map(|i| Tree::from(i.value.as_str()))
            .collect::<Vec<_>>()
            .into()
    };
    let mut out = Object::new();
    if !cors.allow_origins.is_empty() {
        out.insert("allowOrigins".into(), list(&cors.allow_origins));
    }
    if let Some(methods) = &cors.allow_methods {
        let methods: Vec<Tree> = methods
            .value
            .iter()
            .map(|m| Tree::from(m.as_str()))
            .collect();
        out.insert("allowMethods".into(), methods.into());
    }
    if !cors.allow_headers.is_empty() {
        out.insert("allowHeaders".into(), list(&cors.allow_headers));
    }
    if !cors.expose_headers.is_empty() {
        out.insert("exposeHeaders".into(), list(&cors.expose_headers));
    }
    if cors.allow_credentials {
        out.insert("allowCredentials".into(), true.into());
    }
    if let Some(age) = &cors.max_age_s {
        out.insert("maxAge".into(), age.value.into());
    }
    out.into()
}

/// A config's APIs as they are defined, kept by a generation so the admin API and docs pages
/// can export them.
#[derive(Debug, Default)]
pub struct Definitions {
    /// Each API's definition and its stages' names, in config order.
    apis: Vec<(std::sync::Arc<RawApi>, Vec<String>)>,
    /// The stages served from a deployment, with the deployment's definition (by stage; the
    /// API by its name): what they export instead of the file's.
    deployed: Vec<(String, std::sync::Arc<RawApi>)>,
    origin: Option<String>,
    base_dir: std::path::PathBuf,
}

impl Definitions {
    pub fn from_config(config: &super::Config) -> Self {
        let apis = config
            .definitions
            .iter()
            .filter_map(|d| {
                let served = config.apis.iter().find(|a| a.name == d.name.value)?;
                Some((
                    d.clone(),
                    served.stages.iter().map(|s| s.name.clone()).collect(),
                ))
            })
            .collect();
        Self {
            apis,
            deployed: Vec::new(),
            origin: config.origin.clone(),
            base_dir: config.base_dir.clone(),
        }
    }

    /// These, with the stages served from deployments exporting their deployment's
    /// definition (`config::deploy::Deployed::definitions`).
    pub fn with_deployed(mut self, deployed: &[(String, std::sync::Arc<RawApi>)]) -> Self {
        self.deployed = deployed.to_vec();
        self
    }

    /// The OpenAPI document of `api` for `stage` (its first stage if `None`); `None` if there
    /// is no such API or stage.
    pub fn export(
        &self,
        api: &str,
        stage: Option<&str>,
        extensions: bool,
        server_url: Option<String>,
    ) -> Option<Tree> {
        let (definition, stages) = self.apis.iter().find(|(d, _)| d.name.value == api)?;
        let stage = match stage {
            Some(s) => stages.iter().find(|st| *st == s)?,
            None => stages.first()?,
        };
        let definition = self
            .deployed
            .iter()
            .find(|(s, d)| s == stage && d.name.value == api)
            .map_or(definition, |(_, d)| d);
        let options = ExportOptions {
            stage: stage.clone(),
            server_url,
            extensions,
            origin: self.origin.clone(),
        };
        Some(export(definition, &options, &self.base_dir))
    }

    /// The APIs' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.apis.iter().map(|(d, _)| d.name.value.as_str())
    }
}

/// An `aws` integration as API Gateway writes it: `type: aws`, the service ARN as `uri`, and
/// the endpoint, when not AWS's own, as `x-edgeway-endpoint`. The keys stay on the node.
fn aws_integration(aws: &crate::config::raw::RawAws, out: &mut Object) {
    out.insert("type".into(), "aws".into());
    let method = aws
        .method
        .as_ref()
        .map_or("POST".to_owned(), |m| m.value.trim().to_ascii_uppercase());
    out.insert("httpMethod".into(), method.into());
    let text = |v: &Option<serde_saphyr::Spanned<String>>| {
        v.as_ref()
            .map(|s| s.value.trim().to_owned())
            .unwrap_or_default()
    };
    let uri = match &aws.uri {
        Some(uri) => uri.value.trim().to_owned(),
        None => {
            let call = match &aws.action {
                Some(action) => format!("action/{}", action.value.trim()),
                None => format!("path/{}", text(&aws.path).trim_start_matches('/')),
            };
            format!(
                "arn:aws:apigateway:{}:{}:{call}",
                text(&aws.region),
                text(&aws.service)
            )
        }
    };
    out.insert("uri".into(), uri.into());
    if let Some(endpoint) = &aws.endpoint {
        out.insert("x-edgeway-endpoint".into(), endpoint.value.trim().into());
    }
    mapping_fields(aws.mapping_fields(), aws.timeout_ms.as_ref(), out);
}

/// What `http` and `aws` integrations share: templates, passthrough, parameter mappings,
/// content handling, timeout and integration responses.
fn mapping_fields(
    fields: crate::config::raw::RawMappingFields<'_>,
    timeout_ms: Option<&serde_saphyr::Spanned<u64>>,
    out: &mut Object,
) {
    if !fields.request_templates.is_empty() {
        out.insert(
            "requestTemplates".into(),
            templates(fields.request_templates),
        );
    }
    if let Some(p) = fields.passthrough {
        out.insert("passthroughBehavior".into(), p.value.trim().into());
    }
    if !fields.request_parameters.is_empty() {
        let params: Object = fields
            .request_parameters
            .iter()
            .map(|(k, v)| (k.clone(), Tree::from(v.value.as_str())))
            .collect();
        out.insert("requestParameters".into(), params.into());
    }
    if let Some(c) = fields.content_handling {
        out.insert(
            "contentHandling".into(),
            c.value.trim().to_ascii_uppercase().into(),
        );
    }
    if let Some(t) = timeout_ms {
        out.insert("timeoutInMillis".into(), t.value.into());
    }
    if !fields.responses.is_empty() {
        out.insert("responses".into(), integration_responses(fields.responses));
    }
}

#[cfg(test)]
mod round_trip {
    //! Import → export → import over generated Edgeway APIs: an export with API Gateway's
    //! extensions imports back as the definition it was made from.
    use super::*;
    use crate::openapi::{Options, import_text};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{1,6}".prop_map(|s| s),
            "[a-z]{1,4}".prop_map(|s| format!("{{{s}}}")),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        (prop::collection::vec(segment(), 1..4), any::<bool>()).prop_map(|(segments, greedy)| {
            let mut seen = Vec::new();
            let mut path = String::new();
            for (i, s) in segments.iter().enumerate() {
                // Parameter names are unique within a path.
                let s = if s.starts_with('{') && seen.contains(s) {
                    format!("{{p{i}}}")
                } else {
                    s.clone()
                };
                seen.push(s.clone());
                path.push('/');
                path.push_str(&s);
            }
            if greedy {
                path.push_str("/{rest+}");
            }
            path
        })
    }

    fn integration(path: &str) -> impl Strategy<Value = Value> + use<> {
        let params: String = path
            .split('/')
            .filter(|s| s.starts_with('{'))
            .map(|s| format!("/{s}"))
            .collect();
        let proxy = format!("http://origin.example/t{params}");
        prop_oneof![
            Just(json!({ "http_proxy": proxy })),
            (200u16..599, "[a-z ]{0,12}", any::<bool>()).prop_map(|(status, body, header)| {
                let mut mock = json!({ "status": status });
                if header {
                    mock["headers"] = json!({ "x-mock": "yes" });
                }
                if !body.is_empty() {
                    mock["body"] = json!(body);
                }
                json!({ "mock": mock })
            }),
            (200u16..299).prop_map(|status| json!({ "http": {
                "method": "POST",
                "uri": "http://origin.example/mapped",
                "request_templates": { "application/json": "{\"a\": $input.json('$.a')}" },
                "passthrough": "never",
                "responses": [
                    { "selection_pattern": "4\\d{2}", "status": 400 },
                    { "status": status, "response_templates": { "application/json": "{}" } },
                ],
            }})),
            Just(json!({ "function": "orders" })),
            Just(json!({ "function": { "plugin": "orders", "payload": "aws-proxy-1.0" } })),
            Just(json!({ "function": { "plugin": "orders", "payload": "aws-proxy-2.0" } })),
        ]
    }

    fn route() -> impl Strategy<Value = Value> {
        (
            path(),
            prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "ANY"]),
        )
            .prop_flat_map(|(path, method)| {
                (
                    Just(format!("{method} {path}")),
                    integration(&path),
                    any::<bool>(),
                    any::<bool>(),
                    prop::option::of(prop::sample::select(vec!["all", "parameters"])),
                )
            })
            .prop_map(|(key, integration, key_required, authorized, validation)| {
                let mut route = json!({ "route": key });
                if authorized {
                    route["auth"] = json!("gate");
                }
                if key_required {
                    route["api_key_required"] = json!(true);
                }
                match validation {
                    Some("all") => {
                        route["validation"] =
                            json!({ "validate": "all", "body": { "model": "Pet" } });
                    }
                    Some(mode) => {
                        route["validation"] =
                            json!({ "validate": mode, "required": ["querystring.q", "header.x-tenant"] });
                    }
                    None => {}
                }
                route["integration"] = integration;
                route
            })
    }

    fn api() -> impl Strategy<Value = Value> {
        prop::collection::vec(route(), 1..8).prop_map(|routes| {
            // An export groups routes by path (in first-seen order) and a path's methods are
            // unique: generate them so.
            let mut grouped: Vec<(String, Vec<Value>)> = Vec::new();
            for r in routes {
                let key = r["route"].as_str().unwrap_or_default().to_owned();
                let (method, path) = key.split_once(' ').unwrap_or_default();
                match grouped.iter_mut().find(|(p, _)| p == path) {
                    Some((_, list)) => {
                        if !list.iter().any(|x| {
                            x["route"].as_str().unwrap_or_default().starts_with(&format!("{method} "))
                        }) {
                            list.push(r);
                        }
                    }
                    None => grouped.push((path.to_owned(), vec![r])),
                }
            }
            let routes: Vec<Value> = grouped.into_iter().flat_map(|(_, l)| l).collect();
            json!({
                "name": "api",
                "stages": { "prod": {} },
                "authorizers": {
                    "gate": { "plugin": "gate-plugin", "identity_source": ["header.authorization", "query.token"], "result_ttl_s": 60 },
                },
                "models": { "Pet": { "schema": {
                    "type": "object", "required": ["name"],
                    "properties": { "name": { "type": "string" }, "tag": { "type": ["string", "null"] } },
                } } },
                "routes": routes,
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn an_export_imports_back_as_the_same_api(definition in api()) {
            let raw: crate::config::raw::RawApi =
                serde_json::from_value(definition.clone()).expect("a generated API is a valid definition");
            let options = ExportOptions {
                stage: "prod".into(),
                server_url: Some("https://api.example.com".into()),
                extensions: true,
                origin: None,
            };
            let document = export(&raw, &options, Path::new("."));
            let text = serde_json::to_string(&document).expect("JSON");
            let mut import_options = Options { name: Some("api".into()), ..Default::default() };
            for plugin in ["orders", "gate-plugin"] {
                import_options.functions.insert(plugin.into(), plugin.into());
            }
            let imported = import_text(&text, Path::new("export.json"), &import_options)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let again: Value = imported.api.to_json();
            prop_assert_eq!(again, definition, "document: {}", text);
        }
    }
}
