//! Test plugin: a handler that allocates 1 MiB chunks, writing every byte, until allocation
//! fails, for the host's memory-cap tests. The failed allocation aborts, which traps.

use std::hint::black_box;

use edgeway_plugin_sdk::{Error, Handler, Request, Response, export_handler};

const CHUNK: usize = 1 << 20;

struct MemoryBomb;

impl Handler for MemoryBomb {
    fn new() -> Result<Self, Error> {
        Ok(MemoryBomb)
    }

    fn handle(&self, _request: Request) -> Result<Response, Error> {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            chunk.resize(CHUNK, 0xa5);
            // Keep every chunk observably alive so none is optimised away or freed.
            chunks.push(black_box(chunk));
            black_box(&chunks);
        }
    }
}

export_handler!(MemoryBomb);
