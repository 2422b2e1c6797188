//! A client's TLS certificate (mutual TLS), as API Gateway shows it: `$context.identity.
//! clientCert.*`, the Lambda events' `clientCert`, identity sources for authorizers, and the
//! header a listener forwards to the origin.
//!
//! Read once per connection from the verified chain's leaf; each request on the connection
//! carries it in its extensions (`Arc<ClientCert>`).

use std::sync::Arc;

use rustls_pki_types::CertificateDer;

/// The fields of a client certificate, formatted as API Gateway formats them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate as PEM.
    pub pem: String,
    /// `CN=client.example,O=Example` (RFC 4514).
    pub subject_dn: String,
    pub issuer_dn: String,
    /// Colon-separated lowercase hex bytes: `0a:1b:...`.
    pub serial: String,
    /// `May 28 12:30:02 2019 GMT`.
    pub not_before: String,
    pub not_after: String,
}

/// A field of [`ClientCert`], by the name API Gateway gives it under `clientCert.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Pem,
    SubjectDn,
    IssuerDn,
    Serial,
    NotBefore,
    NotAfter,
}

impl Field {
    /// Every field, with its name after `clientCert.`.
    pub const ALL: [(&'static str, Field); 6] = [
        ("clientCertPem", Field::Pem),
        ("subjectDN", Field::SubjectDn),
        ("issuerDN", Field::IssuerDn),
        ("serialNumber", Field::Serial),
        ("validity.notBefore", Field::NotBefore),
        ("validity.notAfter", Field::NotAfter),
    ];

    /// The field named `name` (after `clientCert.`).
    pub fn parse(name: &str) -> Option<Field> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// Its name after `clientCert.`.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(n, _)| n)
    }
}

impl ClientCert {
    /// The fields of a DER certificate; `None` if it does not parse (a verified chain's
    /// leaf always does).
    pub fn from_der(der: &CertificateDer<'_>) -> Option<Arc<ClientCert>> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let serial = cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        Some(Arc::new(ClientCert {
            pem: pem(der),
            subject_dn: rfc4514(cert.subject()),
            issuer_dn: rfc4514(cert.issuer()),
            serial,
            not_before: openssl_time(cert.validity().not_before),
            not_after: openssl_time(cert.validity().not_after),
        }))
    }

    /// One field's text.
    pub fn get(&self, field: Field) -> &str {
        match field {
            Field::Pem => &self.pem,
            Field::SubjectDn => &self.subject_dn,
            Field::IssuerDn => &self.issuer_dn,
            Field::Serial => &self.serial,
            Field::NotBefore => &self.not_before,
            Field::NotAfter => &self.not_after,
        }
    }

    /// `{"clientCertPem", "subjectDN", "issuerDN", "serialNumber", "validity": {..}}`, as the
    /// Lambda events carry it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "clientCertPem": self.pem,
            "subjectDN": self.subject_dn,
            "issuerDN": self.issuer_dn,
            "serialNumber": self.serial,
            "validity": { "notBefore": self.not_before, "notAfter": self.not_after },
        })
    }
}

fn pem(der: &CertificateDer<'_>) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// A distinguished name as RFC 4514 writes it: most specific first, `,` between.
fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut parts: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let key = x509_parser::objects::oid2abbrev(
                        atv.attr_type(),
                        x509_parser::objects::oid_registry(),
                    )
                    .map_or_else(|_| atv.attr_type().to_id_string(), str::to_owned);
                    let value = atv.as_str().map_or_else(
                        |_| format!("#{}", hex(atv.attr_value().data)),
                        escape_dn_value,
                    );
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    parts.reverse();
    parts.join(",")
}

fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == value.len() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `May 28 12:30:02 2019 GMT` (OpenSSL's format, which API Gateway shows).
fn openssl_time(time: x509_parser::time::ASN1Time) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = time.to_datetime();
    let month = MONTHS[usize::from(u8::from(t.month())) - 1];
    format!(
        "{month} {:>2} {:02}:{:02}:{:02} {} GMT",
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_formatted_as_api_gateway_shows_them() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "client one");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example, Inc");
        params.serial_number = Some(vec![0x0a, 0x1b, 0xff].into());
        params.not_before = rcgen::date_time_ymd(2019, 5, 8);
        params.not_after = rcgen::date_time_ymd(2031, 12, 25);
        let cert = params.self_signed(&key).unwrap();
        let parsed = ClientCert::from_der(cert.der()).unwrap();
        assert_eq!(parsed.serial, "0a:1b:ff");
        assert_eq!(parsed.subject_dn, "O=Example\\, Inc,CN=client one");
        assert_eq!(parsed.issuer_dn, parsed.subject_dn);
        assert_eq!(parsed.not_before, "May  8 00:00:00 2019 GMT");
        assert_eq!(parsed.not_after, "Dec 25 00:00:00 2031 GMT");
        assert_eq!(parsed.pem, cert.pem().replace("\r\n", "\n"));
        assert_eq!(Field::parse("validity.notAfter"), Some(Field::NotAfter));
        assert_eq!(parsed.get(Field::Serial), "0a:1b:ff");
        assert_eq!(
            parsed.to_json()["validity"]["notBefore"],
            "May  8 00:00:00 2019 GMT"
        );
    }
}
