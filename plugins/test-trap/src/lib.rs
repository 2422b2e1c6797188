//! Test plugin: a handler that panics (traps) when the query has `trap=1`, and otherwise
//! answers 200 `calls=<n>` (also in header `x-calls`), where `n` counts this instance's
//! calls, the current one included. After a trap the next call gets a fresh instance, so
//! `n` starts again at 1.

use std::cell::Cell;

use edgeway_plugin_sdk::{Error, Handler, Request, Response, export_handler};

struct Trap {
    calls: Cell<u64>,
}

impl Handler for Trap {
    fn new() -> Result<Self, Error> {
        Ok(Trap {
            calls: Cell::new(0),
        })
    }

    fn handle(&self, request: Request) -> Result<Response, Error> {
        let calls = self.calls.get() + 1;
        self.calls.set(calls);
        if request.query.split('&').any(|pair| pair == "trap=1") {
            panic!("test-trap: trap requested");
        }
        Ok(Response::text(200, format!("calls={calls}")).with_header("x-calls", calls.to_string()))
    }
}

export_handler!(Trap);
