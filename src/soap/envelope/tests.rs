//! The envelope parser's cases: what it reads, and what it refuses as what.

use super::*;

fn envelope(version: SoapVersion, body: &str) -> String {
    let ns = match version {
        SoapVersion::Soap11 => SOAP11_NS,
        SoapVersion::Soap12 => SOAP12_NS,
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{ns}" xmlns:xsd="{WRAPPER_NS}" xmlns:dto="{DTO_NS}">
  <s:Header/>
  <s:Body>{body}</s:Body>
</s:Envelope>"#
    )
}

fn revoke(apps: &str) -> String {
    format!(
        "<xsd:revokeAuthzForAppsByResoureOwner><xsd:revokeRequestDTO>{apps}\
         <dto:authzUser>ignored</dto:authzUser>\
         <dto:consumerKey>k</dto:consumerKey><dto:consumerSecret>s</dto:consumerSecret>\
         </xsd:revokeRequestDTO></xsd:revokeAuthzForAppsByResoureOwner>"
    )
}

#[test]
fn both_operations_in_both_versions() {
    for version in [SoapVersion::Soap11, SoapVersion::Soap12] {
        let list = envelope(version, "<xsd:getAppsAuthorizedByUser/>");
        assert_eq!(
            parse(list.as_bytes(), version),
            Ok(Operation::AppsAuthorizedByUser)
        );
        let body = revoke("<dto:apps>My App</dto:apps><dto:apps> b &amp; c </dto:apps><dto:apps/>");
        assert_eq!(
            parse(envelope(version, &body).as_bytes(), version),
            Ok(Operation::Revoke {
                apps: vec!["My App".into(), "b & c".into()],
                spelling: Spelling::Wso2
            })
        );
    }
    let spelled = envelope(
        SoapVersion::Soap11,
        &revoke("<dto:apps>a</dto:apps>").replace("Resoure", "Resource"),
    );
    assert!(matches!(
        parse(spelled.as_bytes(), SoapVersion::Soap11),
        Ok(Operation::Revoke {
            spelling: Spelling::Correct,
            ..
        })
    ));
    // The service namespace for the wrapper, CDATA and a character reference.
    let other = format!(
        r#"<Envelope xmlns="{SOAP11_NS}"><Body><op:getAppsAuthorizedByUser xmlns:op="{SERVICE_NS}"><!-- c --></op:getAppsAuthorizedByUser></Body></Envelope>"#
    );
    assert_eq!(
        parse(other.as_bytes(), SoapVersion::Soap11),
        Ok(Operation::AppsAuthorizedByUser)
    );
    let cdata = envelope(
        SoapVersion::Soap11,
        &revoke("<dto:apps><![CDATA[x<y]]>&#x41;</dto:apps>"),
    );
    assert!(matches!(
        parse(cdata.as_bytes(), SoapVersion::Soap11),
        Ok(Operation::Revoke { apps, .. }) if apps == ["x<yA"]
    ));
}

fn refused(xml: &str) -> Refusal {
    parse(xml.as_bytes(), SoapVersion::Soap11).expect_err(xml)
}

#[test]
fn what_is_refused_and_as_what() {
    let v11 = |body: &str| envelope(SoapVersion::Soap11, body);
    // Hostile XML.
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        v11(&revoke("<dto:apps>&x;</dto:apps>"))
    );
    assert_eq!(refused(&xxe).reason, "a DTD is not allowed");
    let laughs = v11(&revoke("<dto:apps>&lol9;</dto:apps>"));
    assert_eq!(refused(&laughs).reason, "entity references are not allowed");
    let deep = format!(
        "{}{}",
        "<a>".repeat(MAX_DEPTH - 4),
        "</a>".repeat(MAX_DEPTH - 4)
    );
    assert!(refused(&v11(&format!(
        "<xsd:getAppsAuthorizedByUser>{deep}</xsd:getAppsAuthorizedByUser>"
    )))
    .reason
    .contains("no parameters"));
    let header_deep = envelope(SoapVersion::Soap11, "<xsd:getAppsAuthorizedByUser/>").replace(
        "<s:Header/>",
        &format!(
            "<s:Header>{}{}</s:Header>",
            "<h>".repeat(40),
            "</h>".repeat(40)
        ),
    );
    assert!(refused(&header_deep).reason.contains("deeper than 32"));
    let many = envelope(SoapVersion::Soap11, "<xsd:getAppsAuthorizedByUser/>").replace(
        "<s:Header/>",
        &format!(
            "<s:Header><h>{}</h></s:Header>",
            "<i/>".repeat(MAX_ELEMENTS)
        ),
    );
    assert!(refused(&many).reason.contains("elements"));
    assert!(refused(&v11("<xsd:getAppsAuthorizedByUser/><?pi x?>"))
        .reason
        .contains("processing"));
    let latin = v11("<xsd:getAppsAuthorizedByUser/>").replace("UTF-8", "ISO-8859-1");
    assert_eq!(refused(&latin).reason, "only UTF-8 is accepted");
    assert_eq!(
        parse(b"<a>\xff</a>", SoapVersion::Soap11)
            .unwrap_err()
            .reason,
        "the request is not UTF-8"
    );
    // Malformed.
    for bad in ["", "<", "<s:Envelope", "not xml", "<a></b>"] {
        assert_eq!(refused(bad).kind, RefusalKind::Client, "{bad:?}");
    }
    assert!(
        refused(&v11("<xsd:getAppsAuthorizedByUser/>").replace("</s:Envelope>", ""))
            .reason
            .contains("not")
    );
    assert_eq!(
        refused(&format!("{}<x/>", v11("<xsd:getAppsAuthorizedByUser/>"))).reason,
        "content after the envelope"
    );
    // Shape.
    assert_eq!(
        refused(&v11("<xsd:deleteEverything/>")).reason,
        "no such operation"
    );
    assert_eq!(
        refused(&v11("<getAppsAuthorizedByUser/>")).reason,
        "the operation is not in the service's namespace"
    );
    assert_eq!(
        refused(&v11(
            "<xsd:getAppsAuthorizedByUser/><xsd:getAppsAuthorizedByUser/>"
        ))
        .reason,
        "one operation per request"
    );
    assert_eq!(refused(&v11("")).reason, "the Body names no operation");
    assert_eq!(
        refused(&v11("text<xsd:getAppsAuthorizedByUser/>")).reason,
        "text where the request has none"
    );
    assert!(refused(&v11(&revoke("<dto:apps><b/></dto:apps>")))
        .reason
        .contains("text only"));
    assert!(refused(&v11(&revoke("<dto:admin>1</dto:admin>")))
        .reason
        .contains("no such field"));
    // Version and headers.
    let v12 = envelope(SoapVersion::Soap12, "<xsd:getAppsAuthorizedByUser/>");
    assert_eq!(refused(&v12).kind, RefusalKind::VersionMismatch);
    let must = v11("<xsd:getAppsAuthorizedByUser/>").replace(
        "<s:Header/>",
        "<s:Header><x:Sec xmlns:x=\"urn:x\" s:mustUnderstand=\"1\"/></s:Header>",
    );
    assert_eq!(refused(&must).kind, RefusalKind::MustUnderstand);
    let optional = must.replace("s:mustUnderstand=\"1\"", "s:mustUnderstand=\"0\"");
    assert!(parse(optional.as_bytes(), SoapVersion::Soap11).is_ok());
}
