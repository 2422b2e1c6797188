//! Phase 7, validate: the route's required parameters, then its body schema. A failure is a
//! 400 listing what was wrong, and the request goes no further. Checking the body means
//! reading it whole (within `limits.max_body_bytes`); it then goes on buffered.

use http::request::Parts;

use super::{GatewayError, InBody, RequestContext};

/// Validates the request if the route asks for it.
pub async fn check(
    ctx: &RequestContext<'_>,
    parts: &Parts,
    body: &mut InBody,
    limit: u64,
) -> Result<(), GatewayError> {
    let Some(validation) = ctx.route.and_then(|r| r.validation.as_deref()) else {
        return Ok(());
    };
    let path_values = ctx.param_values(parts.uri.path());
    validation
        .check_parameters(parts, &path_values)
        .map_err(GatewayError::Validation)?;
    if validation.needs_body() {
        let bytes = body.buffer(limit).await?;
        validation
            .check_body(&bytes)
            .map_err(GatewayError::Validation)?;
    }
    Ok(())
}
