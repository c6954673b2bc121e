//! The whole revocation endpoint (form, client authentication with a failure limiter,
//! revocation in the memory store) fed an arbitrary method, URI, headers, body chunks and
//! peer address, with CORS (one allowed origin) and JSONP on. It must never panic, never
//! answer 5xx, every error must be a well-formed OAuth error (RFC 6749 §5.2) with
//! `no-store`, a JSONP answer starts with its comment guard, and no origin but the
//! configured one is ever allowed.
#![no_main]

use std::{
    convert::Infallible,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::OnceLock,
    time::{Duration, SystemTime},
};

use arbitrary::Arbitrary;
use bytes::Bytes;
use futures_util::stream;
use http::{header, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use tower_oauth_revoke::{
    client_auth::{encode_basic, AuthFailureLimiter, Client, MemoryClientRegistry, RemoteAddr},
    store::{GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};

type Endpoint = RevocationEndpoint<MemoryClientRegistry, MemoryStore>;

struct World {
    runtime: tokio::runtime::Runtime,
    endpoint: Endpoint,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let registry = MemoryClientRegistry::new([
            Client::confidential("app", "app-secret"),
            Client::confidential("my client", "s3cr:t+ &x"),
            Client::public("spa"),
        ]);
        let store = MemoryStore::new();
        runtime.block_on(async {
            let expires = SystemTime::now() + Duration::from_secs(24 * 3600);
            for (i, client) in ["app", "my client", "spa"].iter().enumerate() {
                for kind in [TokenKind::AccessToken, TokenKind::RefreshToken] {
                    let value = format!("tok-{i}-{}", kind.as_str());
                    let record =
                        TokenRecord::new(kind, *client, GrantId::from_u64(i as u64), expires);
                    store
                        .issue(TokenHash::of(&value), record)
                        .await
                        .expect("issue");
                }
            }
        });
        let endpoint = RevocationEndpoint::builder(registry, store)
            .body_limit(1024)
            .limit_failures(AuthFailureLimiter::with_capacity(
                5,
                Duration::from_secs(60),
                64,
            ))
            .cors_origins(["https://app.example.com"])
            .jsonp(true)
            .build()
            .expect("endpoint");
        World { runtime, endpoint }
    })
}

#[derive(Debug, Arbitrary)]
enum MethodChoice {
    Post,
    Get,
    Put,
    Options,
    Other(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum NameChoice {
    Authorization,
    ContentType,
    ContentLength,
    Origin,
    TransferEncoding,
    Other(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Credentials {
    None,
    /// A well-formed Basic header for (id, secret).
    Basic(String, String),
    /// Known good credentials, so that the revoke service is reached.
    KnownBasic,
}

#[derive(Debug, Arbitrary)]
struct Input {
    method: MethodChoice,
    uri: Vec<u8>,
    form_content_type: bool,
    credentials: Credentials,
    headers: Vec<(NameChoice, Vec<u8>)>,
    chunks: Vec<Vec<u8>>,
    peer: (bool, u8),
}

/// Whether a JSON error body keeps to the characters RFC 6749 §5.2 allows in `error` and
/// `error_description` (%x20-21 / %x23-5B / %x5D-7E): printable ASCII, and no quote or
/// backslash inside the strings (the renderer writes `<`, `>`, `&` as `\u003c`, `\u003e`,
/// `\u0026`, which stand for allowed characters).
fn is_rfc6749_text(bytes: &[u8]) -> bool {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => return false,
    };
    let plain = text
        .replace("\\u003c", "<")
        .replace("\\u003e", ">")
        .replace("\\u0026", "&");
    plain.bytes().all(|b| (0x20..=0x7e).contains(&b)) && !plain.contains('\\')
}

fuzz_target!(|input: Input| {
    let world = world();
    let method = match input.method {
        MethodChoice::Post => Method::POST,
        MethodChoice::Get => Method::GET,
        MethodChoice::Put => Method::PUT,
        MethodChoice::Options => Method::OPTIONS,
        MethodChoice::Other(bytes) => match Method::from_bytes(&bytes) {
            Ok(m) => m,
            Err(_) => return,
        },
    };
    let mut builder = Request::builder().method(method);
    builder = match http::Uri::try_from(input.uri.as_slice()) {
        Ok(uri) => builder.uri(uri),
        Err(_) => builder.uri("/oauth2/revoke"),
    };
    let mut sent_authorization = false;
    if input.form_content_type {
        builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    match &input.credentials {
        Credentials::None => {}
        Credentials::Basic(id, secret) => {
            sent_authorization = true;
            builder = builder.header(header::AUTHORIZATION, encode_basic(id, secret));
        }
        Credentials::KnownBasic => {
            sent_authorization = true;
            builder = builder.header(header::AUTHORIZATION, encode_basic("app", "app-secret"));
        }
    }
    for (name, value) in &input.headers {
        let name = match name {
            NameChoice::Authorization => header::AUTHORIZATION,
            NameChoice::ContentType => header::CONTENT_TYPE,
            NameChoice::ContentLength => header::CONTENT_LENGTH,
            NameChoice::Origin => header::ORIGIN,
            NameChoice::TransferEncoding => header::TRANSFER_ENCODING,
            NameChoice::Other(bytes) => match HeaderName::from_bytes(bytes) {
                Ok(n) => n,
                Err(_) => continue,
            },
        };
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        sent_authorization |= name == header::AUTHORIZATION;
        builder = builder.header(name, value);
    }
    let frames = input
        .chunks
        .into_iter()
        .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::from(c))));
    let body = StreamBody::new(stream::iter(frames));
    let Ok(mut request) = builder.body(body) else {
        return;
    };
    let ip = if input.peer.0 {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, input.peer.1))
    } else {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            input.peer.1 as u16,
            0,
            0,
            0,
            1,
        ))
    };
    request
        .extensions_mut()
        .insert(RemoteAddr(SocketAddr::new(ip, 40000)));

    let endpoint = world.endpoint.clone();
    let (parts, body) = world.runtime.block_on(async move {
        let response = endpoint.oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        (parts, body)
    });

    let status = parts.status;
    assert!(!status.is_server_error(), "{status}: {body:?}");
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    let is = |ct: &str| content_type.is_some_and(|v| v.as_bytes().starts_with(ct.as_bytes()));
    if is("application/javascript") || is("text/javascript") {
        // A JSONP answer: a comment guard, then a validated callback.
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with(b"/**/"), "{body:?}");
    } else if is("application/json") {
        assert!(status.is_client_error(), "{status}");
        assert!(body.starts_with(b"{\"error\":\""), "{body:?}");
        assert!(
            is_rfc6749_text(&body),
            "error body outside RFC 6749 §5.2: {body:?}"
        );
        assert_eq!(parts.headers[header::CACHE_CONTROL], "no-store");
    } else {
        assert!(
            status.is_success(),
            "{status} without an OAuth error body: {body:?}"
        );
        assert!(body.is_empty(), "a {status} with a body: {body:?}");
    }
    match status {
        StatusCode::TOO_MANY_REQUESTS => assert!(parts.headers.contains_key(header::RETRY_AFTER)),
        StatusCode::METHOD_NOT_ALLOWED => assert!(parts.headers.contains_key(header::ALLOW)),
        StatusCode::UNAUTHORIZED if sent_authorization => {
            assert!(parts.headers.contains_key(header::WWW_AUTHENTICATE))
        }
        _ => {}
    }
    // No origin is ever allowed but the configured one.
    if let Some(allowed) = parts.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        assert_eq!(allowed, "https://app.example.com");
    }
});
