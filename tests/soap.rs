//! WSO2's SOAP `OAuthAdminService` on the demo server over HTTPS, called by a stock SOAP
//! client (Python's zeep, from the served WSDL alone) and by hand-written hostile requests.
//!
//! zeep comes from PyPI (`.ci/soap.sh` installs it); `SKIP_SOAP_TESTS=1` skips the tests
//! that need it when it is missing, anything else makes them fail.

#![cfg(feature = "soap")]

mod common;

use std::{path::PathBuf, process::Command};

use common::{demo_server_binary, Process};
use serde_json::Value;

const APP: (&str, &str, &str) = (
    "YmxD0jDOIfiBkD8TPLYOfxNSIg4a",
    "FJdj7G956wqKw3d4X0BWONMIu00a",
    "WSO2 guide sample app",
);
const OTHER: (&str, &str, &str) = ("other-client", "other-secret", "Another app");
const SERVICE: &str = "/services/OAuthAdminService";

/// The demo over HTTPS, its certificate, and a client that trusts it.
struct Demo {
    _process: Process,
    base: String,
    cert: PathBuf,
    http: reqwest::Client,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cert);
    }
}

impl Demo {
    fn start() -> Self {
        let cert = std::env::temp_dir().join(format!(
            "tor-soap-{}-{:x}.pem",
            std::process::id(),
            rand::random::<u64>()
        ));
        let process = Process::start(
            &demo_server_binary(),
            &[
                "--listen",
                "127.0.0.1:0",
                "--cert-out",
                cert.to_str().unwrap(),
            ],
        );
        assert!(process.url.starts_with("https://"), "{}", process.url);
        let pem = std::fs::read(&cert).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        Self {
            base: process.url.clone(),
            _process: process,
            cert,
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Alice's access token to `client`.
    async fn token(&self, (id, secret, _): (&str, &str, &str)) -> String {
        let reply: Value = self
            .http
            .post(self.url("/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-password"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["access_token"].as_str().unwrap().to_owned()
    }

    async fn userinfo(&self, token: &str) -> u16 {
        self.http
            .get(self.url("/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The client ids the REST owner API lists for alice.
    async fn listed(&self) -> Vec<String> {
        let reply: Value = self
            .http
            .get(self.url("/users/me/authorizations"))
            .basic_auth("alice", Some("alice-password"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut ids: Vec<String> = reply["authorizations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["client_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// zeep, from the WSDL, as `user`: one call on the SOAP 1.1 or 1.2 port.
    fn zeep(&self, user: (&str, &str), port: &str, operation: &str, apps: &[&str]) -> Value {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/soap/zeep_client.py");
        let output = Command::new("python3")
            .arg(script)
            .arg(self.url(&format!("{SERVICE}?wsdl")))
            .arg(&self.cert)
            .args([user.0, user.1, port, operation])
            .args(apps)
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "zeep failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
    }

    /// A hand-written POST to the service, as alice unless `user` says otherwise.
    async fn post(&self, content_type: &str, action: Option<&str>, body: String) -> (u16, String) {
        let mut request = self
            .http
            .post(self.url(SERVICE))
            .basic_auth("alice", Some("alice-password"))
            .header("content-type", content_type)
            .body(body);
        if let Some(action) = action {
            request = request.header("soapaction", action);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

fn zeep_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import zeep"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        common::skip_or_fail(
            "SKIP_SOAP_TESTS",
            "python3 cannot import zeep (bash .ci/soap.sh)",
        );
    }
    found
}

fn apps(listed: &Value) -> Vec<(String, String)> {
    let mut apps: Vec<(String, String)> = listed["apps"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {listed}"))
        .iter()
        .map(|a| {
            (
                a["applicationName"].as_str().unwrap().to_owned(),
                a["oauthConsumerKey"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    apps.sort();
    apps
}

#[tokio::test]
async fn zeep_lists_and_revokes_from_the_wsdl_in_both_soap_versions() {
    if !zeep_available() {
        return;
    }
    let demo = Demo::start();
    let app = demo.token(APP).await;
    let other = demo.token(OTHER).await;
    let alice = ("alice", "alice-password");
    let both = vec![
        (OTHER.2.to_owned(), OTHER.0.to_owned()),
        (APP.2.to_owned(), APP.0.to_owned()),
    ];
    assert_eq!(apps(&demo.zeep(alice, "11", "list", &[])), both);
    assert_eq!(apps(&demo.zeep(alice, "12", "list", &[])), both);
    // Bob has none, and sees none of alice's.
    assert!(apps(&demo.zeep(("bob", "bob-password"), "11", "list", &[])).is_empty());

    // No application named: error, nothing revoked.
    let none = demo.zeep(alice, "11", "revoke", &[]);
    assert_eq!(none["error"], true, "{none}");
    assert_eq!(none["errorCode"], "invalid_request");
    assert_eq!(demo.userinfo(&other).await, 200);

    // Bad credentials: a fault, nothing revoked.
    let refused = demo.zeep(("alice", "wrong"), "12", "revoke", &[OTHER.2]);
    assert!(refused.get("fault").is_some(), "{refused}");
    assert!(!refused.to_string().contains("alice"), "{refused}");
    assert_eq!(demo.userinfo(&other).await, 200);

    // WSO2's spelling over SOAP 1.2: the app's token is refused, the other app is kept.
    let revoked = demo.zeep(alice, "12", "revoke", &[OTHER.2]);
    assert_eq!(revoked["error"], false, "{revoked}");
    assert_eq!(demo.userinfo(&other).await, 401);
    assert_eq!(demo.userinfo(&app).await, 200);
    assert_eq!(demo.listed().await, [APP.0]);
    assert_eq!(
        apps(&demo.zeep(alice, "11", "list", &[])),
        [(APP.2.to_owned(), APP.0.to_owned())]
    );

    // The spelled-out name over SOAP 1.1.
    let revoked = demo.zeep(alice, "11", "revoke-spelled", &[APP.2]);
    assert_eq!(revoked["error"], false, "{revoked}");
    assert_eq!(demo.userinfo(&app).await, 401);
    assert!(demo.listed().await.is_empty());
}

fn envelope(ns: &str, body: &str) -> String {
    format!(
        "<s:Envelope xmlns:s=\"{ns}\" xmlns:xsd=\"http://org.apache.axis2/xsd\" \
         xmlns:dto=\"http://dto.oauth.identity.carbon.wso2.org/xsd\"><s:Body>{body}</s:Body>\
         </s:Envelope>"
    )
}

const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";

fn revoke(apps: &str) -> String {
    format!(
        "<xsd:revokeAuthzForAppsByResoureOwner><xsd:revokeRequestDTO>{apps}\
         </xsd:revokeRequestDTO></xsd:revokeAuthzForAppsByResoureOwner>"
    )
}

#[tokio::test]
async fn hostile_requests_get_a_fault_and_change_nothing() {
    let demo = Demo::start();
    let token = demo.token(OTHER).await;
    let app = format!("<dto:apps>{}</dto:apps>", OTHER.2);
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        envelope(SOAP11, &revoke("<dto:apps>&x;</dto:apps>"))
    );
    let laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>{}",
        envelope(SOAP11, &revoke("<dto:apps>&b;</dto:apps>"))
    );
    let deep = envelope(SOAP11, "<xsd:getAppsAuthorizedByUser/>").replace(
        "<s:Body>",
        &format!(
            "<s:Header>{}{}</s:Header><s:Body>",
            "<d>".repeat(33),
            "</d>".repeat(33)
        ),
    );
    let big = envelope(
        SOAP11,
        &revoke(&format!("{app}<!--{}-->", "x".repeat(70_000))),
    );
    let cases: Vec<(&str, &str, Option<&str>, String, u16)> = vec![
        ("a DTD with an external entity", "text/xml", None, xxe, 400),
        ("entity expansion", "text/xml", None, laughs, 400),
        ("nesting deeper than 32", "text/xml", None, deep, 400),
        ("a body over 64 KiB", "text/xml", None, big, 413),
        (
            "an unknown operation",
            "text/xml",
            None,
            envelope(SOAP11, "<xsd:revokeAll/>"),
            400,
        ),
        (
            "malformed XML",
            "text/xml",
            None,
            "<s:Envelope><".into(),
            400,
        ),
        (
            "SOAP 1.2 sent as 1.1",
            "text/xml",
            None,
            envelope(SOAP12, &revoke(&app)),
            400,
        ),
        (
            "an action that is not the body's",
            "text/xml",
            Some("\"urn:getAppsAuthorizedByUser\""),
            envelope(SOAP11, &revoke(&app)),
            400,
        ),
        (
            "not SOAP at all",
            "application/json",
            None,
            "{}".into(),
            415,
        ),
    ];
    for (what, content_type, action, body, status) in cases {
        let (got, text) = demo.post(content_type, action, body).await;
        assert_eq!(got, status, "{what}: {text}");
        assert!(text.contains(":Fault>"), "{what}: {text}");
        assert!(!text.contains("root:"), "{what}: a file leaked: {text}");
        assert_eq!(demo.userinfo(&token).await, 200, "{what} revoked nothing");
    }
    // SOAP 1.2 faults are 1.2's: Sender.
    let (status, text) = demo
        .post(
            "application/soap+xml; charset=utf-8",
            None,
            envelope(SOAP12, "<xsd:noSuchOperation/>"),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        text.contains("soapenv:Sender") && text.contains(SOAP12),
        "{text}"
    );

    // No credentials: 401, a fault, Basic asked for.
    let response = demo
        .http
        .post(demo.url(SERVICE))
        .header("content-type", "text/xml")
        .body(envelope(SOAP11, "<xsd:getAppsAuthorizedByUser/>"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert!(response.text().await.unwrap().contains("soapenv:Client"));

    // And the well-formed request works, by hand, at the SOAP 1.1 port's path.
    let response = demo
        .http
        .post(demo.url("/services/OAuthAdminService.OAuthAdminServiceHttpsSoap11Endpoint/"))
        .basic_auth("alice", Some("alice-password"))
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "\"urn:revokeAuthzForAppsByResoureOwner\"")
        .body(envelope(SOAP11, &revoke(&app)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("<ax:error>false</ax:error>"));
    assert_eq!(demo.userinfo(&token).await, 401);
}

#[tokio::test]
async fn the_wsdl_names_what_the_service_accepts() {
    let demo = Demo::start();
    let response = demo
        .http
        .get(demo.url(&format!("{SERVICE}?wsdl")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let wsdl = response.text().await.unwrap();
    for part in [
        "targetNamespace=\"http://oauth.identity.carbon.wso2.org\"",
        "name=\"revokeAuthzForAppsByResoureOwner\"",
        "name=\"revokeAuthzForAppsByResourceOwner\"",
        "name=\"getAppsAuthorizedByUser\"",
        "soapAction=\"urn:revokeAuthzForAppsByResoureOwner\"",
        "targetNamespace=\"http://org.apache.axis2/xsd\"",
        "targetNamespace=\"http://dto.oauth.identity.carbon.wso2.org/xsd\"",
    ] {
        assert!(wsdl.contains(part), "{part}");
    }
    // Its ports are this server's, at WSO2's paths.
    for port in ["Soap11", "Soap12"] {
        let location = format!(
            "location=\"{}/services/OAuthAdminService.OAuthAdminServiceHttps{port}Endpoint/\"",
            demo.base
        );
        assert!(wsdl.contains(&location), "{location}");
    }
}
