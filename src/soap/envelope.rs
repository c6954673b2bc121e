//! The envelope parser: a strict, bounded reading of the two operations' requests.
//!
//! It reads namespaces (quick-xml's `NsReader`) and refuses, rather than skips, what a SOAP
//! request never needs: a DTD, an entity other than the five XML predefines and character
//! references, a processing instruction, an encoding other than UTF-8, nesting deeper than
//! [`MAX_DEPTH`], more than [`MAX_ELEMENTS`] elements, text where the operation has none, and
//! any element the operation does not define.

use quick_xml::{
    events::{BytesStart, Event},
    name::ResolveResult,
    NsReader,
};

use super::{SoapVersion, DTO_NS, SERVICE_NS, WRAPPER_NS};

/// How deep elements may nest (the envelope is depth 1).
pub const MAX_DEPTH: usize = 32;
/// How many elements a request may hold.
pub const MAX_ELEMENTS: usize = 1024;

/// The SOAP 1.1 envelope namespace.
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The SOAP 1.2 envelope namespace.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// The name the revocation operation was called by, echoed in its response's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// `revokeAuthzForAppsByResoureOwner`, as WSO2 puts it on the wire.
    Wso2,
    /// `revokeAuthzForAppsByResourceOwner`.
    Correct,
}

impl Spelling {
    /// The operation's element name.
    pub fn operation(self) -> &'static str {
        match self {
            Spelling::Wso2 => "revokeAuthzForAppsByResoureOwner",
            Spelling::Correct => "revokeAuthzForAppsByResourceOwner",
        }
    }
}

/// A request the service understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `getAppsAuthorizedByUser`.
    AppsAuthorizedByUser,
    /// `revokeAuthzForAppsByResoureOwner`: the application names of `apps`, in order.
    Revoke {
        /// The names the request gave (empty ones left out).
        apps: Vec<String>,
        /// How the operation was named.
        spelling: Spelling,
    },
}

impl Operation {
    /// The operation's element name (the request's, for a revocation).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::AppsAuthorizedByUser => "getAppsAuthorizedByUser",
            Operation::Revoke { spelling, .. } => spelling.operation(),
        }
    }
}

/// Why an envelope was refused: the fault's kind and a reason safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The fault code's kind.
    pub kind: RefusalKind,
    /// What was wrong, for the fault's reason: never an echo of the request beyond an
    /// element's name.
    pub reason: String,
}

/// The kind of a [`Refusal`], which picks the SOAP fault code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The request is wrong (`Client` / `Sender`).
    Client,
    /// The envelope is of another SOAP version than the request's content type says
    /// (`VersionMismatch`).
    VersionMismatch,
    /// A header the request says must be understood is not (`MustUnderstand`).
    MustUnderstand,
}

fn refuse(reason: impl Into<String>) -> Refusal {
    Refusal {
        kind: RefusalKind::Client,
        reason: reason.into(),
    }
}

/// Where the parser stands: what the innermost open element is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Envelope,
    Header,
    /// Inside a header block, at any depth: read for well-formedness only.
    HeaderBlock,
    Body,
    Operation,
    RequestDto,
    /// A field of the request whose text is kept (`apps`).
    App,
    /// A field of the request whose text is ignored (`authzUser`, `consumerKey`, ...).
    Ignored,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ns {
    Soap11,
    Soap12,
    Wso2,
    Dto,
    Other,
    None,
}

fn ns_of(resolved: &ResolveResult<'_>) -> Ns {
    match resolved {
        ResolveResult::Bound(ns) => match ns.as_ref() {
            b if b == SOAP11_NS => Ns::Soap11,
            b if b == SOAP12_NS => Ns::Soap12,
            b if b == SERVICE_NS || b == WRAPPER_NS => Ns::Wso2,
            b if b == DTO_NS => Ns::Dto,
            _ => Ns::Other,
        },
        ResolveResult::Unbound => Ns::None,
        ResolveResult::Unknown(_) => Ns::Other,
    }
}

/// Reads a request envelope of `version` (the one its content type named).
pub fn parse(body: &[u8], version: SoapVersion) -> Result<Operation, Refusal> {
    let text = std::str::from_utf8(body).map_err(|_| refuse("the request is not UTF-8"))?;
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = true;
    config.check_comments = true;

    let mut stack: Vec<Place> = Vec::with_capacity(8);
    let mut elements = 0usize;
    let mut seen_first_event = false;
    let mut body_seen = false;
    let mut header_seen = false;
    let mut operation: Option<Operation> = None;
    let mut app = String::new();
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|_| refuse("the request is not well-formed XML"))?;
        let first = !seen_first_event;
        seen_first_event = true;
        match event {
            Event::Decl(decl) => {
                if !first {
                    return Err(refuse("an XML declaration is only allowed first"));
                }
                if let Some(Ok(encoding)) = decl.encoding() {
                    if !encoding.eq_ignore_ascii_case("utf-8") {
                        return Err(refuse("only UTF-8 is accepted"));
                    }
                }
            }
            Event::DocType(_) => return Err(refuse("a DTD is not allowed")),
            Event::PI(_) => return Err(refuse("processing instructions are not allowed")),
            Event::Comment(_) => {}
            Event::Start(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(refuse(format!("more than {MAX_ELEMENTS} elements")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(refuse(format!("elements nest deeper than {MAX_DEPTH}")));
                }
                let ns = ns_of(&resolved);
                let place = enter(
                    stack.last().copied(),
                    ns,
                    &start,
                    version,
                    &mut Seen {
                        body: &mut body_seen,
                        header: &mut header_seen,
                        operation: &mut operation,
                    },
                    reader.resolver(),
                )?;
                if place == Place::App {
                    app.clear();
                }
                stack.push(place);
            }
            Event::End(_) => {
                let place = stack.pop().ok_or_else(|| refuse("an unmatched end tag"))?;
                if place == Place::App {
                    let name = app.trim();
                    if !name.is_empty() {
                        if let Some(Operation::Revoke { apps, .. }) = &mut operation {
                            apps.push(name.to_owned());
                        }
                    }
                }
                if stack.is_empty() {
                    // The envelope closed: nothing may follow but comments and space.
                    return finish(&mut reader, body_seen, operation);
                }
            }
            Event::Empty(_) => unreachable!("empty elements are expanded"),
            Event::Text(text) => {
                let content = text.xml10_content();
                if stack.last() == Some(&Place::App) {
                    app.push_str(&content);
                } else if !matches!(stack.last(), Some(Place::HeaderBlock | Place::Ignored))
                    && !content.trim().is_empty()
                {
                    return Err(refuse("text where the request has none"));
                }
            }
            Event::CData(data) => {
                let content = data.xml10_content();
                match stack.last() {
                    Some(Place::App) => app.push_str(&content),
                    Some(Place::HeaderBlock | Place::Ignored) => {}
                    _ => return Err(refuse("text where the request has none")),
                }
            }
            Event::GeneralRef(reference) => {
                let ch = match &*reference {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "apos" => '\'',
                    "quot" => '"',
                    _ => match reference.resolve_char_ref() {
                        Ok(Some(ch)) => ch,
                        _ => return Err(refuse("entity references are not allowed")),
                    },
                };
                match stack.last() {
                    Some(Place::App) => app.push(ch),
                    Some(Place::HeaderBlock | Place::Ignored) => {}
                    _ if ch.is_whitespace() => {}
                    _ => return Err(refuse("text where the request has none")),
                }
            }
            Event::Eof => {
                return Err(refuse(if stack.is_empty() {
                    "no SOAP envelope"
                } else {
                    "the envelope is not closed"
                }))
            }
        }
    }
}

/// What the parser has seen so far of the envelope's parts.
struct Seen<'a> {
    body: &'a mut bool,
    header: &'a mut bool,
    operation: &'a mut Option<Operation>,
}

/// The place an element opens inside `parent`, or why it is refused.
fn enter(
    parent: Option<Place>,
    ns: Ns,
    start: &BytesStart<'_>,
    version: SoapVersion,
    seen: &mut Seen<'_>,
    resolver: &quick_xml::name::NamespaceResolver,
) -> Result<Place, Refusal> {
    let local = start.local_name();
    let local = local.as_ref();
    let envelope_ns = match version {
        SoapVersion::Soap11 => Ns::Soap11,
        SoapVersion::Soap12 => Ns::Soap12,
    };
    Ok(match parent {
        None => {
            if local != "Envelope" {
                return Err(refuse("the document is not a SOAP envelope"));
            }
            if ns != envelope_ns {
                return Err(Refusal {
                    kind: RefusalKind::VersionMismatch,
                    reason: "the envelope's namespace is not the SOAP version the content type \
                             names"
                        .into(),
                });
            }
            Place::Envelope
        }
        Some(Place::Envelope) => match local {
            "Header" if ns == envelope_ns && !*seen.header && !*seen.body => {
                *seen.header = true;
                Place::Header
            }
            "Body" if ns == envelope_ns && !*seen.body => {
                *seen.body = true;
                Place::Body
            }
            _ => return Err(refuse("an envelope holds one Header, then one Body")),
        },
        Some(Place::Header) => {
            if must_understand(start, resolver, envelope_ns) {
                return Err(Refusal {
                    kind: RefusalKind::MustUnderstand,
                    reason: "a header block that must be understood is not".into(),
                });
            }
            Place::HeaderBlock
        }
        Some(Place::HeaderBlock) => Place::HeaderBlock,
        Some(Place::Body) => {
            if seen.operation.is_some() {
                return Err(refuse("one operation per request"));
            }
            if ns != Ns::Wso2 {
                return Err(refuse("the operation is not in the service's namespace"));
            }
            *seen.operation = Some(match local {
                "getAppsAuthorizedByUser" => Operation::AppsAuthorizedByUser,
                "revokeAuthzForAppsByResoureOwner" => Operation::Revoke {
                    apps: Vec::new(),
                    spelling: Spelling::Wso2,
                },
                "revokeAuthzForAppsByResourceOwner" => Operation::Revoke {
                    apps: Vec::new(),
                    spelling: Spelling::Correct,
                },
                _ => return Err(refuse("no such operation")),
            });
            Place::Operation
        }
        Some(Place::Operation) => match seen.operation {
            Some(Operation::Revoke { .. })
                if local == "revokeRequestDTO" && matches!(ns, Ns::Wso2 | Ns::Dto) =>
            {
                Place::RequestDto
            }
            Some(Operation::Revoke { .. }) => {
                return Err(refuse("the operation takes one revokeRequestDTO"))
            }
            _ => return Err(refuse("the operation takes no parameters")),
        },
        Some(Place::RequestDto) => {
            if !matches!(ns, Ns::Dto | Ns::Wso2 | Ns::None) {
                return Err(refuse("a field of the request in another namespace"));
            }
            match local {
                "apps" => Place::App,
                "authzUser" | "consumerKey" | "consumerSecret" => Place::Ignored,
                _ => return Err(refuse("no such field in revokeRequestDTO")),
            }
        }
        Some(Place::App) => return Err(refuse("an application name is text only")),
        Some(Place::Ignored) => Place::Ignored,
    })
}

/// Whether a header block carries `mustUnderstand="1"` (or `true`) of the envelope's
/// namespace.
fn must_understand(
    start: &BytesStart<'_>,
    resolver: &quick_xml::name::NamespaceResolver,
    envelope_ns: Ns,
) -> bool {
    start.attributes().flatten().any(|attribute| {
        let (resolved, local) = resolver.resolve_attribute(attribute.key);
        local.as_ref() == "mustUnderstand"
            && ns_of(&resolved) == envelope_ns
            && matches!(&*attribute.value, "1" | "true")
    })
}

/// After the envelope closed: only comments and whitespace may follow.
fn finish(
    reader: &mut NsReader<&[u8]>,
    body_seen: bool,
    operation: Option<Operation>,
) -> Result<Operation, Refusal> {
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Comment(_)) => {}
            Ok(Event::Text(t)) if t.xml10_content().trim().is_empty() => {}
            Ok(_) | Err(_) => return Err(refuse("content after the envelope")),
        }
    }
    if !body_seen {
        return Err(refuse("the envelope has no Body"));
    }
    operation.ok_or_else(|| refuse("the Body names no operation"))
}

#[cfg(test)]
mod tests;
