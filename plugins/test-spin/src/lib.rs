//! Test plugin: a handler that never returns, for the host's epoch-deadline tests. The call
//! must end in a timeout trap, and the instance must be replaced.

use std::hint::black_box;

use edgeway_plugin_sdk::{Error, Handler, Request, Response, export_handler};

struct Spin;

impl Handler for Spin {
    fn new() -> Result<Self, Error> {
        Ok(Spin)
    }

    fn handle(&self, _request: Request) -> Result<Response, Error> {
        // `black_box` keeps the optimiser from proving the loop does nothing.
        let mut counter: u64 = 0;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }
}

export_handler!(Spin);
