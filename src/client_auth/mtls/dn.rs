//! Distinguished names as [RFC 4514] strings, compared by what they name rather than by how
//! they are spelled.
//!
//! A client registers the subject of its certificate as a string
//! (`tls_client_auth_subject_dn`, [RFC 8705 §2.1.2]); the same name can be written many ways:
//! `CN=app, O=Example` and `cn=app,o=Example`, `2.5.4.3=#0c03617070,O=Example`, a value
//! escaped or not. Both sides become a [`Dn`], a list of RDNs of (OID, value) pairs:
//!
//! - attribute types by OID: a name (any case) is looked up, a dotted OID is taken as it is;
//! - values as text when they are a string type, whether written plainly, escaped, or as
//!   `#` and the hex of their BER encoding; anything else as its DER;
//! - spaces around `=`, `,` and `+` dropped, runs of spaces inside a value made one
//!   (RFC 4518 §2.6.1's insignificant spaces), while letter case in values counts;
//! - the values of a multi-valued RDN as a set, in no order.
//!
//! [RFC 4514]: https://www.rfc-editor.org/rfc/rfc4514
//! [RFC 8705 §2.1.2]: https://www.rfc-editor.org/rfc/rfc8705#section-2.1.2

use x509_cert::{
    attr::AttributeTypeAndValue,
    der::{
        asn1::{Any, ObjectIdentifier},
        oid::db::DB,
        Decode, Encode, Tag, Tagged,
    },
    name::Name,
};

/// A distinguished name in RFC 4514 order (the last RDN of the certificate's sequence
/// first), each RDN sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Dn(Vec<Vec<Ava>>);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ava {
    oid: ObjectIdentifier,
    value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    /// A string type, its spaces normalised.
    Text(String),
    /// Anything else, as its DER (tag, length and contents).
    Der(Vec<u8>),
}

impl Dn {
    /// The name of a certificate.
    pub(super) fn from_name(name: &Name) -> Self {
        let mut rdns: Vec<Vec<Ava>> = name
            .iter_rdn()
            .map(|rdn| {
                let mut avas: Vec<Ava> = rdn.iter().map(Ava::from_certificate).collect();
                avas.sort();
                avas
            })
            .collect();
        rdns.reverse();
        Dn(rdns)
    }

    /// Parses an RFC 4514 string; `None` if it is not one.
    pub(super) fn parse(text: &str) -> Option<Self> {
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut rest = text.trim_matches(' ');
        if rest.is_empty() {
            return Some(Dn(rdns));
        }
        loop {
            let (ava, after, separator) = parse_ava(rest)?;
            rdn.push(ava);
            rest = after;
            match separator {
                Some(b'+') => {}
                Some(_) => {
                    rdn.sort();
                    rdns.push(std::mem::take(&mut rdn));
                }
                None => {
                    rdn.sort();
                    rdns.push(rdn);
                    return Some(Dn(rdns));
                }
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Ava {
    fn from_certificate(atv: &AttributeTypeAndValue) -> Self {
        Ava {
            oid: atv.oid,
            value: Value::of(&atv.value),
        }
    }
}

impl Value {
    fn of(any: &Any) -> Self {
        let bytes = any.value();
        let text = match any.tag() {
            Tag::Utf8String
            | Tag::PrintableString
            | Tag::Ia5String
            | Tag::TeletexString
            | Tag::VisibleString
            | Tag::NumericString => std::str::from_utf8(bytes).ok().map(str::to_owned),
            Tag::BmpString if bytes.len().is_multiple_of(2) => {
                let units = bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]));
                char::decode_utf16(units)
                    .collect::<Result<String, _>>()
                    .ok()
            }
            _ => None,
        };
        match text {
            Some(text) => Value::Text(normalise_spaces(&text)),
            None => Value::Der(any.to_der().unwrap_or_default()),
        }
    }
}

/// Leading and trailing spaces dropped, inner runs made one.
fn normalise_spaces(text: &str) -> String {
    text.split(' ')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One `type=value` at the start of `text`: the pair, what follows its separator, and the
/// separator (`,` or `+`), if any.
fn parse_ava(text: &str) -> Option<(Ava, &str, Option<u8>)> {
    let (name, rest) = text.split_once('=')?;
    let oid = attribute_type(name.trim_matches(' '))?;
    let rest = rest.trim_start_matches(' ');
    let (value, consumed) = match rest.strip_prefix('#') {
        Some(hex) => hex_value(hex)?,
        None => string_value(rest)?,
    };
    let rest = rest[consumed..].trim_start_matches(' ');
    let (separator, after) = match rest.as_bytes().first() {
        None => (None, ""),
        Some(&c @ (b',' | b'+')) => (Some(c), rest[1..].trim_start_matches(' ')),
        Some(_) => return None,
    };
    if separator.is_some() && after.is_empty() {
        return None;
    }
    Some((Ava { oid, value }, after, separator))
}

/// A name the OID database knows (in any case) or a dotted OID.
fn attribute_type(name: &str) -> Option<ObjectIdentifier> {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return ObjectIdentifier::new(name).ok();
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    DB.by_name(name).copied()
}

/// `#` and hex digits: the BER of a value. Returns the value and the bytes read (with `#`).
fn hex_value(text: &str) -> Option<(Value, usize)> {
    let digits = text.bytes().take_while(u8::is_ascii_hexdigit).count();
    if digits == 0 || !digits.is_multiple_of(2) {
        return None;
    }
    let bytes: Vec<u8> = (0..digits)
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect::<Option<_>>()?;
    let any = Any::from_der(&bytes).ok()?;
    Some((Value::of(&any), digits + 1))
}

/// A string value up to an unescaped `,` or `+`, its escapes undone. Returns the value and
/// the bytes read.
fn string_value(text: &str) -> Option<(Value, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b',' | b'+' => break,
            b'"' | b';' | b'<' | b'>' | 0 => return None,
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                if let Some(hex) = hex {
                    out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                    i += 3;
                } else if b" \"#+,;<=>\\".contains(&next) {
                    out.push(next);
                    i += 2;
                } else {
                    return None;
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8(out).ok()?;
    Some((Value::Text(normalise_spaces(&text)), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(text: &str) -> Dn {
        Dn::parse(text).unwrap_or_else(|| panic!("{text:?} does not parse"))
    }

    #[test]
    fn spellings_of_one_name_are_equal() {
        let name = dn("CN=app client,O=Example Corp,C=SE");
        for other in [
            "cn=app client, o=Example Corp, c=SE",
            "  CN = app client ,  O = Example  Corp , C = SE ",
            "commonName=app client,organizationName=Example Corp,countryName=SE",
            "2.5.4.3=app client,2.5.4.10=Example Corp,2.5.4.6=SE",
            "CN=#0c0a61707020636c69656e74,O=Example Corp,C=SE",
            "CN=app\\20client,O=Example\\20Corp,C=SE",
        ] {
            assert_eq!(dn(other), name, "{other}");
        }
    }

    #[test]
    fn values_case_order_and_content_count() {
        let name = dn("CN=app,O=Example");
        assert_ne!(dn("CN=App,O=Example"), name, "values keep their case");
        assert_ne!(dn("O=Example,CN=app"), name, "RDN order counts");
        assert_ne!(dn("CN=app"), name);
        assert_ne!(dn("CN=app,O=Example,C=SE"), name);
        assert_ne!(dn("CN=app+UID=1,O=Example"), name);
    }

    #[test]
    fn a_multi_valued_rdn_is_a_set() {
        assert_eq!(dn("CN=app+UID=7,O=Example"), dn("UID=7 + CN=app,O=Example"));
    }

    #[test]
    fn escapes_are_undone() {
        let escaped = dn("CN=Smith\\, John\\+x,O=\\#hash\\3Bsemi");
        let Value::Text(cn) = &escaped.0[0][0].value else {
            panic!()
        };
        assert_eq!(cn, "Smith, John+x");
        let Value::Text(o) = &escaped.0[1][0].value else {
            panic!()
        };
        assert_eq!(o, "#hash;semi");
        // UTF-8 written as hex escapes.
        assert_eq!(dn("CN=J\\C3\\A4rvi"), dn("CN=Järvi"));
    }

    #[test]
    fn malformed_names_do_not_parse() {
        for text in [
            "CN",
            "CN=app,",
            "=app",
            "CN=a\"b",
            "CN=a;O=b",
            "CN=a\\",
            "CN=a\\q",
            "nosuchattribute=x",
            "CN=#0c",
            "CN=#zz",
            "CN=#0c03617070 trailing",
            "1.2.x=a",
        ] {
            assert!(Dn::parse(text).is_none(), "{text:?} parsed");
        }
        assert!(Dn::parse("").unwrap().is_empty());
    }
}
