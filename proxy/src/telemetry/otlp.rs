//! OTLP's protobuf wire format for the few messages Edgeway sends: `Span`s, encoded once when
//! they end, and the `ExportTraceServiceRequest` around a batch of them
//! (`opentelemetry/proto/collector/trace/v1/trace_service.proto`, `trace/v1/trace.proto`).
//!
//! Written here rather than built as `opentelemetry-proto` structs and encoded with prost:
//! those hold every key and value as an owned `String`, and the copies the SDK's exporter
//! made per span (`SpanData`, then the proto struct, then its encoding) cost more than the
//! rest of a traced request. Encoding straight from what the request already holds takes no
//! allocation; the tests decode what is sent with `opentelemetry-proto`.

use std::time::SystemTime;

/// Protobuf wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// `SpanFlags`: the span's parent is known to be local or remote, and which.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// `Span.SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn tag(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, (field << 3) | wire);
}

/// A length-delimited field: bytes, a string or an embedded message already encoded.
pub fn bytes_field(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    tag(out, field, LEN);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// An attribute (`KeyValue`) with a string value, as field `field` of its message.
pub fn string_attribute(out: &mut Vec<u8>, field: u64, key: &str, value: &[u8]) {
    // AnyValue { string_value = 1 }
    let any = 1 + varint_len(value.len() as u64) + value.len();
    let pair = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(any as u64) + any;
    tag(out, field, LEN);
    varint(out, pair as u64);
    bytes_field(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, any as u64);
    bytes_field(out, 1, value);
}

/// An attribute with an integer value (`AnyValue.int_value`, field 3).
pub fn int_attribute(out: &mut Vec<u8>, key: &str, value: i64) {
    #[allow(clippy::cast_sign_loss)] // protobuf's int64: two's complement as a varint
    let bits = value as u64;
    let any = 1 + varint_len(bits);
    let pair = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(any as u64) + any;
    tag(out, 9, LEN);
    varint(out, pair as u64);
    bytes_field(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, any as u64);
    tag(out, 3, VARINT);
    varint(out, bits);
}

/// What a span is, apart from its attributes.
#[derive(Debug, Clone, Copy)]
pub struct SpanHead<'a> {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The parent's id and whether it is the client's (remote); `None` for a root span.
    pub parent: Option<([u8; 8], bool)>,
    pub kind: Kind,
    pub name: &'a str,
    pub start: SystemTime,
    pub end: SystemTime,
    pub error: bool,
}

/// Encodes a `Span` message's fields (not its own tag and length) into `out`; `attributes`
/// appends its attributes (field 9) with [`string_attribute`] and [`int_attribute`].
pub fn span(out: &mut Vec<u8>, head: &SpanHead<'_>, attributes: impl FnOnce(&mut Vec<u8>)) {
    bytes_field(out, 1, &head.trace_id);
    bytes_field(out, 2, &head.span_id);
    let mut flags = 0x01 | HAS_IS_REMOTE; // sampled: only sampled spans are recorded
    if let Some((parent, remote)) = head.parent {
        bytes_field(out, 4, &parent);
        if remote {
            flags |= IS_REMOTE;
        }
    }
    bytes_field(out, 5, head.name.as_bytes());
    tag(out, 6, VARINT);
    varint(out, head.kind as u64);
    tag(out, 7, FIXED64);
    out.extend_from_slice(&unix_nanos(head.start).to_le_bytes());
    tag(out, 8, FIXED64);
    out.extend_from_slice(&unix_nanos(head.end).to_le_bytes());
    attributes(out);
    if head.error {
        // Status { code = 3: STATUS_CODE_ERROR (2) }
        bytes_field(out, 15, &[0x18, 0x02]);
    }
    tag(out, 16, FIXED32);
    out.extend_from_slice(&flags.to_le_bytes());
}

/// The start of every export request up to its spans: the resource (`service.name`) and the
/// instrumentation scope, encoded once.
#[derive(Debug, Clone)]
pub struct Envelope {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

impl Envelope {
    pub fn new(service_name: &str) -> Self {
        let mut attributes = Vec::new();
        string_attribute(&mut attributes, 1, "service.name", service_name.as_bytes());
        let mut resource = Vec::new();
        bytes_field(&mut resource, 1, &attributes);
        let mut scope_fields = Vec::new();
        bytes_field(&mut scope_fields, 1, b"edgeway");
        bytes_field(&mut scope_fields, 2, env!("CARGO_PKG_VERSION").as_bytes());
        let mut scope = Vec::new();
        bytes_field(&mut scope, 1, &scope_fields);
        Self { resource, scope }
    }

    /// An `ExportTraceServiceRequest` of `spans`: `Span` messages each as field 2 of
    /// `ScopeSpans` (tag, length, fields), as [`push_span`] writes them.
    pub fn request(&self, spans: &[u8]) -> Vec<u8> {
        let scope_spans = self.scope.len() + spans.len();
        let resource_spans = self.resource.len() + 1 + varint_len(scope_spans as u64) + scope_spans;
        let mut out = Vec::with_capacity(resource_spans + 16);
        // ExportTraceServiceRequest { resource_spans = 1 }
        tag(&mut out, 1, LEN);
        varint(&mut out, resource_spans as u64);
        // ResourceSpans { resource = 1, scope_spans = 2 }
        out.extend_from_slice(&self.resource);
        tag(&mut out, 2, LEN);
        varint(&mut out, scope_spans as u64);
        // ScopeSpans { scope = 1, spans = 2 }
        out.extend_from_slice(&self.scope);
        out.extend_from_slice(spans);
        out
    }
}

/// Appends one encoded `Span` (its fields in `fields`) to a batch as `ScopeSpans.spans`.
pub fn push_span(batch: &mut Vec<u8>, fields: &[u8]) {
    bytes_field(batch, 2, fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_as_long_as_they_say() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }

    #[test]
    fn attributes_nest_their_lengths() {
        let mut out = Vec::new();
        string_attribute(&mut out, 9, "k", b"vv");
        // tag 9/LEN, 9 bytes: key "k", value AnyValue { string_value "vv" }
        assert_eq!(out, [0x4a, 9, 0x0a, 1, b'k', 0x12, 4, 0x0a, 2, b'v', b'v']);
        let mut out = Vec::new();
        int_attribute(&mut out, "n", -1);
        assert_eq!(
            out.len(),
            2 + 3 + 2 + 1 + 10,
            "a negative int64 takes ten bytes"
        );
    }
}
