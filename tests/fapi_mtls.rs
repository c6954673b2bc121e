//! Mutual-TLS client authentication (RFC 8705) on the demo server: a rustls client
//! (reqwest) presents a certificate in the TLS handshake, and the token, introspection and
//! revocation endpoints authenticate the client by it: `tls_client_auth` by subject DN with
//! `--client-ca`, `self_signed_tls_client_auth` by registered certificate with
//! `--self-signed-clients`. Another client's certificate, a certificate of another
//! subject, none, or an expired one: each refused with 401 `invalid_client`, nothing changed.

#![cfg(all(feature = "mtls", feature = "serve"))]

mod common;

use std::path::PathBuf;

use common::{demo_server_binary, Process};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

const RS: (&str, &str) = ("resource-server", "rs-secret");

/// A certificate and its key, PEM.
struct Identity {
    cert: String,
    key: String,
}

impl Identity {
    fn reqwest(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.key, self.cert).as_bytes()).unwrap()
    }
}

fn params(common_name: &str, expired: bool) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "tower-oauth-revoke demo");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if expired {
        params.not_before = date_time_ymd(2019, 1, 1);
        params.not_after = date_time_ymd(2020, 1, 1);
    }
    params
}

fn self_signed(common_name: &str, expired: bool) -> Identity {
    let key = KeyPair::generate().unwrap();
    let cert = params(common_name, expired).self_signed(&key).unwrap();
    Identity {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn temp(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "tor-mtls-{}-{:x}-{name}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// The demo over HTTPS, asking for client certificates as `args` say.
struct Demo {
    _process: Process,
    base: String,
    server_cert: reqwest::Certificate,
    files: Vec<PathBuf>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Demo {
    fn start(args: &[&str], mut files: Vec<PathBuf>) -> Self {
        let cert = temp("server.pem", "");
        let mut all = vec![
            "--listen",
            "127.0.0.1:0",
            "--cert-out",
            cert.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let process = Process::start(&demo_server_binary(), &all);
        let server_cert = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
        files.push(cert);
        Self {
            base: process.url.trim_end_matches('/').to_owned(),
            _process: process,
            server_cert,
            files,
        }
    }

    /// A client presenting `identity`, or no certificate.
    fn client(&self, identity: Option<&Identity>) -> reqwest::Client {
        let builder = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(self.server_cert.clone())
            .no_proxy();
        match identity {
            Some(identity) => builder.identity(identity.reqwest()),
            None => builder,
        }
        .build()
        .unwrap()
    }

    async fn post(
        &self,
        identity: Option<&Identity>,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let response = self
            .client(identity)
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn active(&self, token: &str) -> bool {
        let body: Value = self
            .client(None)
            .post(format!("{}/oauth2/introspect", self.base))
            .basic_auth(RS.0, Some(RS.1))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["active"] == true
    }

    /// The client authenticates by `good` at every endpoint; `bad` ones are refused.
    async fn authenticates_only_by(
        &self,
        client: &str,
        good: &Identity,
        bad: &[(&str, Option<&Identity>)],
    ) {
        let grant = [("grant_type", "client_credentials"), ("client_id", client)];
        let (status, body) = self.post(Some(good), "/oauth2/token", &grant).await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let (status, body) = self
            .post(
                Some(good),
                "/oauth2/introspect",
                &[("client_id", client), ("token", &token)],
            )
            .await;
        assert_eq!(
            (status, &body["active"]),
            (200, &Value::Bool(true)),
            "{body}"
        );
        for (case, identity) in bad {
            let (status, body) = self.post(*identity, "/oauth2/token", &grant).await;
            assert_eq!(
                (status, &body["error"]),
                (401, &Value::from("invalid_client")),
                "{case}: {body}"
            );
            let (status, body) = self
                .post(
                    *identity,
                    "/oauth2/revoke",
                    &[("client_id", client), ("token", &token)],
                )
                .await;
            assert_eq!(status, 401, "{case}: {body}");
            assert!(self.active(&token).await, "{case}: nothing was revoked");
        }
        let (status, body) = self
            .post(
                Some(good),
                "/oauth2/revoke",
                &[("client_id", client), ("token", &token)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(!self.active(&token).await);
    }
}

#[tokio::test]
async fn tls_client_auth_by_subject_dn_with_a_client_ca() {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "demo client CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let issue = |common_name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = params(common_name, false).signed_by(&key, &ca).unwrap();
        Identity {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    };
    let ca_file = temp("ca.pem", &ca.pem());
    let demo = Demo::start(
        &["--client-ca", ca_file.to_str().unwrap()],
        vec![ca_file.clone()],
    );

    let metadata: Value = demo
        .client(None)
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            demo.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(
        methods.contains(&Value::from("tls_client_auth")),
        "{metadata}"
    );

    // The built-in mtls-client: CN=mtls-client,O=tower-oauth-revoke demo.
    let good = issue("mtls-client");
    let intruder = issue("intruder");
    demo.authenticates_only_by(
        "mtls-client",
        &good,
        &[
            ("another subject from the same CA", Some(&intruder)),
            ("no certificate", None),
        ],
    )
    .await;
}

#[tokio::test]
async fn self_signed_tls_client_auth_by_registered_certificate() {
    let good = self_signed("self-signed-app", false);
    let other = self_signed("self-signed-app", false);
    let expired = self_signed("expired-app", true);
    let config = temp(
        "config.toml",
        &format!(
            "[[clients]]\nid = \"self-signed-app\"\nself_signed_certificate = '''{}'''\n\n\
             [[clients]]\nid = \"expired-app\"\nself_signed_certificate = '''{}'''\n\n\
             [[clients]]\nid = \"resource-server\"\nsecret = \"rs-secret\"\nintrospect = true\n",
            good.cert, expired.cert
        ),
    );
    let demo = Demo::start(
        &[
            "--self-signed-clients",
            "--config",
            config.to_str().unwrap(),
        ],
        vec![config.clone()],
    );
    demo.authenticates_only_by(
        "self-signed-app",
        &good,
        &[
            ("another certificate of the same subject", Some(&other)),
            ("another client's certificate", Some(&expired)),
            ("no certificate", None),
        ],
    )
    .await;
    // A registered certificate past its validity.
    let (status, body) = demo
        .post(
            Some(&expired),
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "expired-app"),
            ],
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
}
