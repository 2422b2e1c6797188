//! Edgeway's built-in mapper: renders the Velocity mapping templates of `http` and `mock`
//! integrations with `edgeway-velocity`, inside the sandbox every plugin runs in (a template
//! is the API author's code, and a hostile one must hit the call's deadline and memory cap,
//! not a worker).
//!
//! Templates are parsed once per instance and kept by the id Edgeway gives them; an id this
//! instance has not seen answers `unknown-template`, and Edgeway loads it and asks again.
//! The instance keeps at most [`KEPT`] templates: loading one more forgets them all (they
//! are loaded again on their next use), which bounds the instance's memory whatever the
//! config holds.

use std::cell::RefCell;
use std::collections::HashMap;

use edgeway_plugin_sdk::{Error, Mapper, MappingInput, RenderError, Rendered, export_mapper};
use edgeway_velocity::aws::{self, Params};
use edgeway_velocity::{Limits, Template};

/// Templates kept per instance.
const KEPT: usize = 512;

struct Templates {
    parsed: RefCell<HashMap<u64, Template>>,
    limits: Limits,
}

impl Mapper for Templates {
    fn new() -> Result<Self, Error> {
        Ok(Self {
            parsed: RefCell::new(HashMap::new()),
            limits: Limits::default(),
        })
    }

    fn load(&self, id: u64, source: String) -> Result<(), Error> {
        let template =
            Template::parse(&source, &self.limits).map_err(|e| Error::msg(e.to_string()))?;
        let mut parsed = self.parsed.borrow_mut();
        if parsed.len() >= KEPT {
            parsed.clear();
        }
        parsed.insert(id, template);
        Ok(())
    }

    fn render(&self, id: u64, input: MappingInput) -> Result<Rendered, RenderError> {
        let parsed = self.parsed.borrow();
        let Some(template) = parsed.get(&id) else {
            return Err(RenderError::UnknownTemplate);
        };
        let input = std::rc::Rc::new(aws::MappingInput {
            body: input.body,
            params: Params {
                path: input.path.into_iter().collect(),
                querystring: input.querystring.into_iter().collect(),
                header: input.header.into_iter().collect(),
            },
            context: input.context,
            stage_variables: input.stage_variables.into_iter().collect(),
        });
        let rendered =
            aws::render(template, &input).map_err(|e| RenderError::Failed(e.to_string()))?;
        let o = rendered.overrides;
        Ok(Rendered {
            body: rendered.body,
            request_header: o.request_header.into_iter().collect(),
            request_path: o.request_path.into_iter().collect(),
            request_querystring: o.request_querystring.into_iter().collect(),
            response_header: o.response_header.into_iter().collect(),
            response_status: o.response_status,
        })
    }
}

export_mapper!(Templates);
