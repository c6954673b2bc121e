//! Differential property test: [`RevocationEndpoint`] answers exactly as the layered
//! composition it replaces.
//!
//! The endpoint runs the steps of the crate's public layers in one future, for speed. This
//! test builds, from the same builder configuration (registry, origins, preflight max age,
//! JSONP flag, realm, body limit, failure limit and policy), both `build()` and
//! `build_layered()`, the composition of those layers, outermost first,
//!
//! ```text
//! CorsPolicy::layer_with_clients -> FormLayer -> JsonpLayer -> ClientAuthLayer
//!   -> CorsPolicy::origin_check -> StepService<Revoker>
//! ```
//!
//! and sends both the same generated sequences of requests, in process. Every answer must have the same status,
//! the same headers (as a multiset of name and value, in any order) and the same body
//! bytes.
//!
//! Revocation and the failure limiter keep state, so each side has its own store, filled
//! identically (same tokens, kinds, clients and grant ids), and its own limiter; a case is
//! a short sequence of requests, so that a second request sees what the first revoked or
//! counted. After the sequence both stores must hold the same tokens.
//!
//! The requests are drawn to reach every branch: methods (`POST`, `GET`, `PUT`,
//! `OPTIONS`), content types, bodies and query strings made of known, unknown and empty
//! tokens, hints, client credentials, valid and invalid callbacks, repeated and malformed
//! parameters, `Authorization` headers good and bad, `Origin`s allowed globally, for a
//! client, foreign and `null`, preflights, declared lengths over the limit, and a store
//! that is down.

mod common;

use std::{
    convert::Infallible,
    fmt,
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use common::DownStore;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{Service, ServiceExt};
use tower_oauth_revoke::{
    body::BoxError,
    client_auth::{
        encode_basic, AuthFailureLimiter, Client, ClientAuthMethod, MemoryClientRegistry,
        RemoteAddr,
    },
    endpoint::LayeredEndpoint,
    revoke::{ForeignTokenResponse, RevocationPolicy, Revoker},
    store::{GrantId, MemoryStore, RevocationScope, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint, RevocationEndpointBuilder,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

/// The origin allowed for every client.
const GLOBAL_ORIGIN: &str = "https://app.test";

fn registry() -> MemoryClientRegistry {
    MemoryClientRegistry::new([
        Client::confidential("server", "s3cret"),
        Client::confidential("basic-only", "b-secret")
            .with_auth_methods([ClientAuthMethod::ClientSecretBasic]),
        Client::public("spa")
            .with_origins(["http://spa.test"])
            .unwrap(),
        Client::public("other"),
    ])
}

/// The issued tokens: (token, kind, client, grant).
const TOKENS: &[(&str, TokenKind, &str, u64)] = &[
    ("t-server-access", TokenKind::AccessToken, "server", 1),
    ("t-server-refresh", TokenKind::RefreshToken, "server", 1),
    ("t-basic-access", TokenKind::AccessToken, "basic-only", 2),
    ("t-spa-access", TokenKind::AccessToken, "spa", 3),
    ("t-spa-refresh", TokenKind::RefreshToken, "spa", 3),
    ("t-other-access", TokenKind::AccessToken, "other", 4),
    ("t-other-refresh", TokenKind::RefreshToken, "other", 5),
];

async fn filled_store(expires: SystemTime) -> MemoryStore {
    let store = MemoryStore::new();
    for &(token, kind, client, grant) in TOKENS {
        // Both stores get the same records, issue time included.
        let record = TokenRecord::new(kind, client, GrantId::from_u64(grant), expires)
            .with_issued_at(expires - Duration::from_secs(3600));
        store.issue(TokenHash::of(token), record).await.unwrap();
    }
    store
}

/// Everything the builder is told, and so everything the layers are configured with.
#[derive(Debug, Clone)]
struct Setup {
    jsonp: bool,
    realm: &'static str,
    body_limit: usize,
    cors_max_age: Duration,
    policy: RevocationPolicy,
    /// `(max_failures, window)`. A case takes far less than a second, so both sides round
    /// `Retry-After` up to the same whole second.
    limiter: Option<(u32, Duration)>,
    store_down: bool,
}

fn setup(jsonp: bool) -> impl Strategy<Value = Setup> {
    let policy = prop_oneof![
        Just(RevocationPolicy::default()),
        Just(
            RevocationPolicy::default()
                .access_token_scope(RevocationScope::Grant)
                .foreign_token(ForeignTokenResponse::InvalidGrant)
        ),
        Just(RevocationPolicy::default().foreign_token(ForeignTokenResponse::Success)),
    ];
    (
        prop::sample::select(vec!["oauth", "revoke \"test\""]),
        prop_oneof![4 => Just(8 * 1024), 1 => Just(64)],
        prop::sample::select(vec![Duration::from_secs(600), Duration::from_secs(42)]),
        policy,
        prop_oneof![
            Just(None),
            Just(Some((2, Duration::from_secs(3600)))),
            Just(Some((1, Duration::from_secs(600)))),
        ],
        prop::bool::weighted(0.1),
    )
        .prop_map(
            move |(realm, body_limit, cors_max_age, policy, limiter, store_down)| Setup {
                jsonp,
                realm,
                body_limit,
                cors_max_age,
                policy,
                limiter,
                store_down,
            },
        )
}

/// The one configuration both sides are built from.
fn builder<S: TokenStore>(
    setup: &Setup,
    store: S,
) -> RevocationEndpointBuilder<MemoryClientRegistry, S> {
    let mut builder = RevocationEndpoint::builder(registry(), store)
        .cors_origins([GLOBAL_ORIGIN])
        .cors_max_age(setup.cors_max_age)
        .jsonp(setup.jsonp)
        .realm(setup.realm)
        .body_limit(setup.body_limit)
        .policy(setup.policy);
    if let Some((max, window)) = setup.limiter {
        builder = builder.limit_failures(AuthFailureLimiter::new(max, window));
    }
    builder
}

fn endpoint<S: TokenStore>(setup: &Setup, store: S) -> RevocationEndpoint<MemoryClientRegistry, S> {
    builder(setup, store).build().unwrap()
}

type Layered<S> = LayeredEndpoint<MemoryClientRegistry, Revoker<S>>;

/// The composition of public layers that the endpoint must answer as.
fn layered<S: TokenStore>(setup: &Setup, store: S) -> Layered<S> {
    builder(setup, store).build_layered().unwrap()
}

// Requests.

/// One request, described so that it can be built twice (a request is not `Clone`).
#[derive(Debug, Clone)]
struct Spec {
    method: Method,
    query: Option<String>,
    content_type: Option<&'static str>,
    content_length: Option<Length>,
    body: String,
    authorization: Option<String>,
    origin: Option<&'static str>,
    request_method: Option<&'static str>,
    request_headers: Option<&'static str>,
    remote: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy)]
enum Length {
    /// The body's length.
    Exact,
    /// More than any limit of this test.
    Huge,
}

impl Spec {
    fn request(&self) -> Request<Full<Bytes>> {
        let uri = match &self.query {
            Some(query) => format!("/revoke?{query}"),
            None => "/revoke".to_owned(),
        };
        let mut req = Request::builder().method(self.method.clone()).uri(uri);
        let headers = [
            ("content-type", self.content_type.map(str::to_owned)),
            (
                "content-length",
                self.content_length.map(|length| match length {
                    Length::Exact => self.body.len().to_string(),
                    Length::Huge => "100000".to_owned(),
                }),
            ),
            ("authorization", self.authorization.clone()),
            ("origin", self.origin.map(str::to_owned)),
            (
                "access-control-request-method",
                self.request_method.map(str::to_owned),
            ),
            (
                "access-control-request-headers",
                self.request_headers.map(str::to_owned),
            ),
        ];
        for (name, value) in headers {
            if let Some(value) = value {
                req = req.header(name, value);
            }
        }
        if let Some(addr) = self.remote {
            req = req.extension(RemoteAddr(addr));
        }
        req.body(Full::new(Bytes::from(self.body.clone())))
            .expect("a valid request")
    }
}

fn basic(id: &str, secret: &str) -> String {
    encode_basic(id, secret).to_str().unwrap().to_owned()
}

fn token_param() -> impl Strategy<Value = String> {
    let known: Vec<String> = TOKENS.iter().map(|t| format!("token={}", t.0)).collect();
    let odd = [
        "token=unknown",
        "token=",
        "token",
        // `t-spa-access` spelled with an escape.
        "token=t%2Dspa-access",
        "token=%zz",
    ];
    prop_oneof![
        4 => prop::sample::select(known),
        1 => prop::sample::select(odd.map(str::to_owned).to_vec()),
    ]
}

fn hint_param() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "token_type_hint=access_token",
        "token_type_hint=refresh_token",
        "token_type_hint=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token",
        "token_type_hint=id_token",
        "token_type_hint=",
    ])
}

fn client_id_param() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        2 => Just("client_id=server"),
        1 => Just("client_id=basic-only"),
        2 => Just("client_id=spa"),
        2 => Just("client_id=other"),
        1 => Just("client_id=nobody"),
        1 => Just("client_id="),
    ]
}

fn secret_param() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "client_secret=s3cret",
        "client_secret=b-secret",
        "client_secret=wrong",
        "client_secret=",
    ])
}

fn callback_param() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        3 => prop::sample::select(vec!["callback=cb", "callback=a.b", "callback=package.myCallback"]),
        1 => prop::sample::select(vec![
            "callback=1bad",
            "callback=alert%281%29",
            "callback=new.cb",
            "callback=",
            "callback=%zz",
        ]),
    ]
}

/// Anything else: repeats of the parameters above, malformed escapes, empty pairs.
fn noise_param() -> impl Strategy<Value = String> {
    prop_oneof![
        token_param(),
        client_id_param().prop_map(str::to_owned),
        callback_param().prop_map(str::to_owned),
        prop::sample::select(vec![
            "foo=bar", "%zz=1", "a%2=b", "=x", "", "+token=x", "%E9=1"
        ])
        .prop_map(str::to_owned),
    ]
}

/// A urlencoded form: the usual parameters, each maybe, plus some noise, in any order.
fn form(callback: f64) -> impl Strategy<Value = String> {
    let noise = prop_oneof![
        6 => Just(Vec::new()),
        2 => prop::collection::vec(noise_param(), 1),
        1 => prop::collection::vec(noise_param(), 2),
    ];
    (
        prop::option::weighted(0.85, token_param()),
        prop::option::of(hint_param()),
        prop::option::weighted(0.7, client_id_param()),
        prop::option::weighted(0.3, secret_param()),
        prop::option::weighted(callback, callback_param()),
        noise,
    )
        .prop_flat_map(|(token, hint, id, secret, callback, noise)| {
            let mut parts: Vec<String> = token.into_iter().collect();
            parts.extend(
                [hint, id, secret, callback]
                    .into_iter()
                    .flatten()
                    .map(str::to_owned),
            );
            parts.extend(noise);
            Just(parts).prop_shuffle()
        })
        .prop_map(|parts| parts.join("&"))
}

fn spec() -> impl Strategy<Value = Spec> {
    let method = prop_oneof![
        6 => Just(Method::POST),
        3 => Just(Method::GET),
        1 => Just(Method::PUT),
        2 => Just(Method::OPTIONS),
    ];
    let content_type = prop_oneof![
        6 => Just(Some("application/x-www-form-urlencoded")),
        2 => Just(Some("application/x-www-form-urlencoded; charset=utf-8")),
        1 => Just(Some("Application/X-WWW-Form-Urlencoded")),
        1 => Just(Some("application/json")),
        1 => Just(None),
    ];
    let content_length = prop_oneof![
        6 => Just(None),
        2 => Just(Some(Length::Exact)),
        1 => Just(Some(Length::Huge)),
    ];
    let authorization = prop_oneof![
        6 => Just(None),
        2 => Just(Some(basic("server", "s3cret"))),
        1 => Just(Some(basic("basic-only", "b-secret"))),
        1 => Just(Some(basic("server", "wrong"))),
        1 => Just(Some(basic("spa", ""))),
        1 => Just(Some(basic("nobody", "x"))),
        1 => Just(Some("Basic !!!".to_owned())),
        1 => Just(Some("Basic c2VydmVy".to_owned())), // `server`, no colon
        1 => Just(Some("Bearer x".to_owned())),
    ];
    let origin = prop_oneof![
        4 => Just(None),
        2 => Just(Some(GLOBAL_ORIGIN)),
        2 => Just(Some("http://spa.test")),
        1 => Just(Some("https://evil.test")),
        1 => Just(Some("null")),
        1 => Just(Some("https://APP.test")),
    ];
    let request_method = prop_oneof![
        3 => Just(None),
        2 => Just(Some("POST")),
        1 => Just(Some("GET")),
        1 => Just(Some("PUT")),
    ];
    let request_headers = prop_oneof![
        3 => Just(None),
        1 => Just(Some("authorization,content-type")),
        1 => Just(Some("x-custom")),
    ];
    let remote = prop_oneof![
        Just(None),
        Just(Some(SocketAddr::from(([127, 0, 0, 1], 40000)))),
        Just(Some(SocketAddr::from(([127, 0, 0, 2], 40001)))),
    ];
    // A JSONP `GET` takes its parameters from the query string; other requests seldom
    // have one.
    let method_and_query = method.prop_flat_map(|method| {
        let query = if method == Method::GET { 0.9 } else { 0.2 };
        (Just(method), prop::option::weighted(query, form(0.8)))
    });
    (
        (method_and_query, content_type, content_length, form(0.2)),
        (
            authorization,
            origin,
            request_method,
            request_headers,
            remote,
        ),
    )
        .prop_map(
            |(
                ((method, query), content_type, content_length, body),
                (authorization, origin, request_method, request_headers, remote),
            )| Spec {
                method,
                query,
                content_type,
                content_length,
                body,
                authorization,
                origin,
                request_method,
                request_headers,
                remote,
            },
        )
}

/// A short sequence of requests, often the same request again (a second revocation, a
/// repeated failure), so that the store's and the limiter's state matter.
fn sequence() -> impl Strategy<Value = Vec<Spec>> {
    (
        prop::collection::vec(spec(), 1..4),
        prop::collection::vec(any::<prop::sample::Index>(), 1..8),
    )
        .prop_map(|(specs, picks)| {
            picks
                .iter()
                .map(|pick| specs[pick.index(specs.len())].clone())
                .collect()
        })
}

// Answers.

/// A response read whole; headers sorted, so that equality ignores their order.
#[derive(PartialEq, Eq)]
struct Reply {
    status: StatusCode,
    headers: Vec<(String, Bytes)>,
    body: Bytes,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.status)?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {}", String::from_utf8_lossy(value))?;
        }
        write!(f, "\n{}", String::from_utf8_lossy(&self.body))
    }
}

async fn send<Svc, B>(service: Svc, req: Request<Full<Bytes>>) -> Reply
where
    Svc: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let response = service.oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(Into::into)
        .expect("the body is readable")
        .to_bytes();
    let mut headers: Vec<(String, Bytes)> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                Bytes::copy_from_slice(value.as_bytes()),
            )
        })
        .collect();
    headers.sort();
    Reply {
        status: parts.status,
        headers,
        body,
    }
}

/// Sends each request to both services in turn; fails on the first differing answer.
async fn compare<S: TokenStore>(
    setup: &Setup,
    endpoint_store: S,
    layered_store: S,
    requests: &[Spec],
) -> Result<(), TestCaseError> {
    let endpoint = endpoint(setup, endpoint_store);
    let layered = layered(setup, layered_store);
    for (i, spec) in requests.iter().enumerate() {
        let from_endpoint = send(endpoint.clone(), spec.request()).await;
        let from_layers = send(layered.clone(), spec.request()).await;
        prop_assert_eq!(
            from_endpoint,
            from_layers,
            "request {} of {}: {:?}",
            i + 1,
            requests.len(),
            spec
        );
    }
    Ok(())
}

fn check(setup: Setup, requests: Vec<Spec>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if setup.store_down {
            return compare(
                &setup,
                DownStore::default(),
                DownStore::default(),
                &requests,
            )
            .await;
        }
        let expires = SystemTime::now() + Duration::from_secs(3600);
        let (endpoint_store, layered_store) =
            (filled_store(expires).await, filled_store(expires).await);
        compare(
            &setup,
            endpoint_store.clone(),
            layered_store.clone(),
            &requests,
        )
        .await?;
        for &(token, ..) in TOKENS {
            let hash = TokenHash::of(token);
            prop_assert_eq!(
                endpoint_store.inspect(&hash).await.unwrap(),
                layered_store.inspect(&hash).await.unwrap(),
                "the stores differ on {}",
                token
            );
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn endpoint_answers_as_the_layers_with_jsonp(
        setup in setup(true),
        requests in sequence(),
    ) {
        check(setup, requests)?;
    }

    #[test]
    fn endpoint_answers_as_the_layers_without_jsonp(
        setup in setup(false),
        requests in sequence(),
    ) {
        check(setup, requests)?;
    }
}
