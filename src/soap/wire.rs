//! What the service writes: response envelopes, faults, and the WSDL.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use quick_xml::escape::escape;

use super::{envelope::RefusalKind, SoapVersion, DTO_NS, WRAPPER_NS};
use crate::{body::Body, error::set_no_store};

/// An application a resource owner authorized: WSO2's `OAuthConsumerAppDTO`, the fields
/// this service fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerApp {
    /// `applicationName`: the client's registered name, or its id when it has none.
    pub application_name: String,
    /// `oauthConsumerKey`: the client id.
    pub oauth_consumer_key: String,
}

/// The fault codes this service answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The request was wrong: SOAP 1.1 `Client`, SOAP 1.2 `Sender`.
    Client,
    /// The service could not answer: SOAP 1.1 `Server`, SOAP 1.2 `Receiver`.
    Server,
    /// The envelope is of another SOAP version.
    VersionMismatch,
    /// A mandatory header was not understood.
    MustUnderstand,
}

impl From<RefusalKind> for FaultCode {
    fn from(kind: RefusalKind) -> Self {
        match kind {
            RefusalKind::Client => FaultCode::Client,
            RefusalKind::VersionMismatch => FaultCode::VersionMismatch,
            RefusalKind::MustUnderstand => FaultCode::MustUnderstand,
        }
    }
}

impl SoapVersion {
    fn namespace(self) -> &'static str {
        match self {
            SoapVersion::Soap11 => super::envelope::SOAP11_NS,
            SoapVersion::Soap12 => super::envelope::SOAP12_NS,
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            SoapVersion::Soap11 => "text/xml; charset=utf-8",
            SoapVersion::Soap12 => "application/soap+xml; charset=utf-8",
        })
    }
}

fn envelope(version: SoapVersion, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><soapenv:Envelope xmlns:soapenv=\"{}\">\
         <soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>",
        version.namespace()
    )
}

fn respond(version: SoapVersion, status: StatusCode, xml: String) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from(xml)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, version.content_type());
    set_no_store(response.headers_mut());
    response
}

/// A SOAP fault of `version` with `status`; `reason` is written escaped.
pub fn fault(
    version: SoapVersion,
    status: StatusCode,
    code: FaultCode,
    reason: &str,
) -> Response<Body> {
    let reason = escape(reason);
    let body = match version {
        SoapVersion::Soap11 => {
            let code = match code {
                FaultCode::Client => "Client",
                FaultCode::Server => "Server",
                FaultCode::VersionMismatch => "VersionMismatch",
                FaultCode::MustUnderstand => "MustUnderstand",
            };
            format!(
                "<soapenv:Fault><faultcode>soapenv:{code}</faultcode>\
                 <faultstring>{reason}</faultstring></soapenv:Fault>"
            )
        }
        SoapVersion::Soap12 => {
            let code = match code {
                FaultCode::Client => "Sender",
                FaultCode::Server => "Receiver",
                FaultCode::VersionMismatch => "VersionMismatch",
                FaultCode::MustUnderstand => "MustUnderstand",
            };
            format!(
                "<soapenv:Fault><soapenv:Code><soapenv:Value>soapenv:{code}</soapenv:Value>\
                 </soapenv:Code><soapenv:Reason><soapenv:Text xml:lang=\"en\">{reason}\
                 </soapenv:Text></soapenv:Reason></soapenv:Fault>"
            )
        }
    };
    respond(version, status, envelope(version, &body))
}

/// `getAppsAuthorizedByUserResponse`: one `return` per application.
pub fn apps_response(version: SoapVersion, apps: &[ConsumerApp]) -> Response<Body> {
    let mut body = format!(
        "<ns:getAppsAuthorizedByUserResponse xmlns:ns=\"{WRAPPER_NS}\" xmlns:ax=\"{DTO_NS}\">"
    );
    for app in apps {
        body.push_str(&format!(
            "<ns:return><ax:applicationName>{}</ax:applicationName>\
             <ax:oauthConsumerKey>{}</ax:oauthConsumerKey></ns:return>",
            escape(app.application_name.as_str()),
            escape(app.oauth_consumer_key.as_str())
        ));
    }
    body.push_str("</ns:getAppsAuthorizedByUserResponse>");
    respond(version, StatusCode::OK, envelope(version, &body))
}

/// The revocation's response (`<operation>Response`): `error` and, when it is true,
/// `errorCode` and `errorMsg`.
pub fn revoke_response(
    version: SoapVersion,
    operation: &str,
    error: Option<(&str, &str)>,
) -> Response<Body> {
    let fields = match error {
        None => "<ax:error>false</ax:error>".to_owned(),
        Some((code, message)) => format!(
            "<ax:error>true</ax:error><ax:errorCode>{}</ax:errorCode>\
             <ax:errorMsg>{}</ax:errorMsg>",
            escape(code),
            escape(message)
        ),
    };
    let body = format!(
        "<ns:{operation}Response xmlns:ns=\"{WRAPPER_NS}\" xmlns:ax=\"{DTO_NS}\">\
         <ns:return>{fields}</ns:return></ns:{operation}Response>"
    );
    respond(version, StatusCode::OK, envelope(version, &body))
}

/// The service description, kept in the repository (`src/soap/OAuthAdminService.wsdl`).
pub const WSDL: &str = include_str!("OAuthAdminService.wsdl");

/// The WSDL with its endpoints at `address` (the service's URL, without the port suffixes).
pub(super) fn wsdl_response(address: &str) -> Response<Body> {
    let xml = WSDL.replace(
        "https://localhost/services/OAuthAdminService",
        &escape(address),
    );
    let mut response = Response::new(Body::new(Bytes::from(xml)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests;
