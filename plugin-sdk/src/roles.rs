//! One trait per plugin role, each matching an export of `wit/plugin.wit`.
//!
//! Every role has `new`, which the SDK calls once per instance before the first call; the
//! value it returns serves every later call of that instance. An `Err` from `new` fails that
//! call and every later one of the instance with the same message (the config does not
//! change under a running instance; a new config means a new instance). An `Err` from a
//! call fails that call only: Edgeway answers 500 and counts it, authorizers fail closed.
//! A panic traps, and the instance is replaced.
//!
//! Calls take `&self`: one instance runs one call at a time, so per-instance state can live
//! in a `Cell` or `RefCell`.

use crate::{Decision, Error, Identity, Request, RequestFlow, Response};

/// Decides who a caller is (`auth: NAME` on a route). Export with
/// [`export_authorizer!`](crate::export_authorizer).
///
/// ```no_run,standalone_crate
/// use edgeway_plugin_sdk::{Authorizer, Decision, Error, Identity, Request, export_authorizer};
///
/// struct OnlyAlice;
///
/// impl Authorizer for OnlyAlice {
///     fn new() -> Result<Self, Error> {
///         Ok(OnlyAlice)
///     }
///
///     fn authorize(&self, identity: Identity, _request: Request) -> Result<Decision, Error> {
///         Ok(match identity.first() {
///             None | Some("") => Decision::Unauthorized,
///             Some("alice") => Decision::allow("alice"),
///             Some(_) => Decision::deny("not alice"),
///         })
///     }
/// }
///
/// export_authorizer!(OnlyAlice);
/// ```
pub trait Authorizer: Sized + 'static {
    /// Builds the plugin, once per instance: read the config here.
    fn new() -> Result<Self, Error>;

    /// Allows ([`Decision::Allow`]), denies (403, [`Decision::Deny`]) or asks the caller to
    /// prove who it is (401, [`Decision::Unauthorized`]). Edgeway caches the decision per
    /// `identity`, so it should depend on `identity` alone; `request` is there for logging
    /// and for checks that do not vary between requests with the same identity.
    fn authorize(&self, identity: Identity, request: Request) -> Result<Decision, Error>;
}

/// Changes requests on their way to the integration and responses on their way back.
/// Export with [`export_transformer!`](crate::export_transformer).
///
/// Both hooks default to passing things through unchanged, so a transformer implements only
/// the side it changes.
///
/// ```no_run,standalone_crate
/// use edgeway_plugin_sdk::{Error, HeaderList, Request, RequestFlow, Transformer, export_transformer};
///
/// struct TagRequests;
///
/// impl Transformer for TagRequests {
///     fn new() -> Result<Self, Error> {
///         Ok(TagRequests)
///     }
///
///     fn on_request(&self, mut request: Request) -> Result<RequestFlow, Error> {
///         request.headers.set_header("x-tagged", "1");
///         Ok(RequestFlow::Continue(request))
///     }
/// }
///
/// export_transformer!(TagRequests);
/// ```
pub trait Transformer: Sized + 'static {
    /// Builds the plugin, once per instance: read the config here.
    fn new() -> Result<Self, Error>;

    /// Continues with a (changed) request, or answers the client now with
    /// [`RequestFlow::Respond`]. Edgeway applies the returned request's `method`, `query`,
    /// `headers`, `path_params` and, when `Some`, `body`; the other fields are read-only.
    ///
    /// Default: continue unchanged.
    fn on_request(&self, request: Request) -> Result<RequestFlow, Error> {
        Ok(RequestFlow::Continue(request))
    }

    /// Changes the response on its way back. `response.body` is `None` when the plugin's
    /// config does not ask for bodies; returning `None` leaves the body as it was.
    ///
    /// Default: return it unchanged.
    fn on_response(&self, request: Request, response: Response) -> Result<Response, Error> {
        let _ = request;
        Ok(response)
    }
}

/// Answers requests itself (`integration: { function: NAME }`). Export with
/// [`export_handler!`](crate::export_handler).
///
/// ```no_run,standalone_crate
/// use edgeway_plugin_sdk::{Error, Handler, Request, Response, export_handler};
///
/// struct Hello;
///
/// impl Handler for Hello {
///     fn new() -> Result<Self, Error> {
///         Ok(Hello)
///     }
///
///     fn handle(&self, _request: Request) -> Result<Response, Error> {
///         Ok(Response::text(200, "hello"))
///     }
/// }
///
/// export_handler!(Hello);
/// ```
pub trait Handler: Sized + 'static {
    /// Builds the plugin, once per instance: read the config here.
    fn new() -> Result<Self, Error>;

    /// The response to `request`. A body of `None` is an empty body.
    fn handle(&self, request: Request) -> Result<Response, Error>;
}

/// Renders mapping templates for `http` and `mock` integrations (`request_templates`,
/// `response_templates`). Edgeway's built-in `mapping-template` component plays this role.
///
/// Edgeway gives each template an id (the same id is always the same source) and calls
/// [`render`](Mapper::render) with it; an instance that answers
/// [`RenderError::UnknownTemplate`](crate::RenderError::UnknownTemplate) is given the source
/// with [`load`](Mapper::load) and asked again, so a mapper parses each template once per
/// instance.
pub trait Mapper: Sized + 'static {
    /// Builds the mapper, once per instance.
    fn new() -> Result<Self, Error>;

    /// Parses `source` and keeps it as template `id`; an error says where and why not.
    fn load(&self, id: u64, source: String) -> Result<(), Error>;

    /// Renders template `id` over `input`.
    fn render(
        &self,
        id: u64,
        input: crate::MappingInput,
    ) -> Result<crate::Rendered, crate::RenderError>;
}

/// A function in AWS Lambda's shape: the event as JSON in, the result as JSON out. Export
/// with [`export_lambda!`](crate::export_lambda).
///
/// As an integration (`function: { plugin: NAME, payload: aws-proxy-1.0 | aws-proxy-2.0 }`)
/// the event is API Gateway's proxy event and the result the response object
/// (`statusCode`, `headers`, `multiValueHeaders`, `cookies`, `body`, `isBase64Encoded`); as a
/// Lambda authorizer (`type: lambda`) the event is the authorizer input and the result
/// `{principalId, policyDocument, context, usageIdentifierKey}`. An `Err` is the function
/// throwing; `Error::msg("Unauthorized")` from an authorizer is a 401, as in AWS.
///
/// ```no_run,standalone_crate
/// use edgeway_plugin_sdk::{Error, Lambda, LambdaContext, export_lambda};
/// use serde_json::{Value, json};
///
/// struct Hello;
///
/// impl Lambda for Hello {
///     fn new() -> Result<Self, Error> {
///         Ok(Hello)
///     }
///
///     fn invoke(&self, event: Value, context: &LambdaContext) -> Result<Value, Error> {
///         let name = event["pathParameters"]["name"].as_str().unwrap_or("stranger");
///         Ok(json!({ "statusCode": 200, "body": format!("hello, {name} ({})", context.request_id) }))
///     }
/// }
///
/// export_lambda!(Hello);
/// ```
pub trait Lambda: Sized + 'static {
    /// Builds the function, once per instance: read the config here.
    fn new() -> Result<Self, Error>;

    /// The result for `event`.
    fn invoke(
        &self,
        event: serde_json::Value,
        context: &LambdaContext,
    ) -> Result<serde_json::Value, Error>;
}

/// The Lambda `context` of one call.
#[derive(Debug, Clone)]
pub struct LambdaContext {
    /// The request's id (Lambda's `awsRequestId`).
    pub request_id: String,
    /// The plugin's name (Lambda's `functionName`).
    pub function_name: String,
    /// When the call's deadline passes.
    pub deadline: std::time::Instant,
}

impl LambdaContext {
    /// How long the call has left before Edgeway stops it (Lambda's
    /// `getRemainingTimeInMillis()`).
    pub fn remaining_time(&self) -> std::time::Duration {
        self.deadline
            .saturating_duration_since(std::time::Instant::now())
    }
}
