//! Faults and answers on the wire: each version's codes, namespace and content type, and
//! which refusal maps to which code.

use http::HeaderMap;
use http_body_util::BodyExt as _;

use super::*;
use crate::soap::{fault_for, RefusalKind};

async fn text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn content_type(response: &Response<Body>) -> &str {
    response.headers()[header::CONTENT_TYPE].to_str().unwrap()
}

#[tokio::test]
async fn faults_of_soap11_are_client_or_server_with_faultstring() {
    let response = fault(
        SoapVersion::Soap11,
        StatusCode::BAD_REQUEST,
        FaultCode::Client,
        "a <b> & c",
    );
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(content_type(&response).starts_with("text/xml"));
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let body = text(response).await;
    assert!(body.contains("xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""));
    assert!(
        body.contains("<faultcode>soapenv:Client</faultcode>"),
        "{body}"
    );
    assert!(
        body.contains("<faultstring>a &lt;b&gt; &amp; c</faultstring>"),
        "{body}"
    );

    let body = text(fault(
        SoapVersion::Soap11,
        StatusCode::SERVICE_UNAVAILABLE,
        FaultCode::Server,
        "down",
    ))
    .await;
    assert!(
        body.contains("<faultcode>soapenv:Server</faultcode>"),
        "{body}"
    );
}

#[tokio::test]
async fn faults_of_soap12_are_sender_or_receiver_with_a_reason_in_english() {
    let response = fault(
        SoapVersion::Soap12,
        StatusCode::BAD_REQUEST,
        FaultCode::Client,
        "no",
    );
    assert!(content_type(&response).starts_with("application/soap+xml"));
    let body = text(response).await;
    assert!(body.contains("xmlns:soapenv=\"http://www.w3.org/2003/05/soap-envelope\""));
    assert!(
        body.contains("<soapenv:Code><soapenv:Value>soapenv:Sender</soapenv:Value>"),
        "{body}"
    );
    assert!(body.contains("<soapenv:Text xml:lang=\"en\">no"), "{body}");
    assert!(!body.contains("faultcode"), "{body}");
    for (code, name) in [
        (FaultCode::Server, "Receiver"),
        (FaultCode::VersionMismatch, "VersionMismatch"),
        (FaultCode::MustUnderstand, "MustUnderstand"),
    ] {
        let body = text(fault(
            SoapVersion::Soap12,
            StatusCode::BAD_REQUEST,
            code,
            "x",
        ))
        .await;
        assert!(
            body.contains(&format!("<soapenv:Value>soapenv:{name}</soapenv:Value>")),
            "{body}"
        );
    }
}

#[test]
fn refusals_map_to_their_codes() {
    assert_eq!(FaultCode::from(RefusalKind::Client), FaultCode::Client);
    assert_eq!(
        FaultCode::from(RefusalKind::VersionMismatch),
        FaultCode::VersionMismatch
    );
    assert_eq!(
        FaultCode::from(RefusalKind::MustUnderstand),
        FaultCode::MustUnderstand
    );
}

#[tokio::test]
async fn a_hosts_fault_takes_the_requests_version_and_the_status_class() {
    let mut headers = HeaderMap::new();
    let body = text(fault_for(&headers, StatusCode::TOO_MANY_REQUESTS, "later")).await;
    assert!(body.contains("soapenv:Client"), "{body}");
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/soap+xml; action=x"),
    );
    let response = fault_for(&headers, StatusCode::TOO_MANY_REQUESTS, "later");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = text(response).await;
    assert!(body.contains("soapenv:Sender"), "{body}");
    let body = text(fault_for(&headers, StatusCode::BAD_GATEWAY, "x")).await;
    assert!(body.contains("soapenv:Receiver"), "{body}");
}

#[test]
fn versions_and_actions_from_the_headers() {
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    };
    let h = headers(&[
        ("content-type", "Text/XML; charset=utf-8"),
        ("soapaction", "\"urn:getAppsAuthorizedByUser\""),
    ]);
    assert_eq!(SoapVersion::of(&h), Some(SoapVersion::Soap11));
    assert_eq!(
        SoapVersion::Soap11.action(&h).as_deref(),
        Some("urn:getAppsAuthorizedByUser")
    );
    let h = headers(&[("content-type", "text/xml"), ("soapaction", "\"\"")]);
    assert_eq!(SoapVersion::Soap11.action(&h), None);
    let h = headers(&[(
        "content-type",
        "application/soap+xml; charset=utf-8; action=\"urn:x\"",
    )]);
    assert_eq!(SoapVersion::of(&h), Some(SoapVersion::Soap12));
    assert_eq!(SoapVersion::Soap12.action(&h).as_deref(), Some("urn:x"));
    let h = headers(&[("content-type", "application/xml")]);
    assert_eq!(SoapVersion::of(&h), None);
    assert_eq!(SoapVersion::of(&HeaderMap::new()), None);
}

#[tokio::test]
async fn a_revocation_answer_says_whether_it_failed() {
    let body = text(revoke_response(
        SoapVersion::Soap11,
        "revokeAuthzForAppsByResoureOwner",
        None,
    ))
    .await;
    assert!(
        body.contains("revokeAuthzForAppsByResoureOwnerResponse"),
        "{body}"
    );
    assert!(body.contains(">false<"), "{body}");
    let body = text(revoke_response(
        SoapVersion::Soap12,
        "revokeAuthzForAppsByResourceOwner",
        Some(("invalid_request", "none named")),
    ))
    .await;
    assert!(
        body.contains(">true<") && body.contains(">invalid_request<"),
        "{body}"
    );
    assert!(body.contains(">none named<"), "{body}");
}
