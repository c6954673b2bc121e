//! The application: the routes, the request log, and what each endpoint is built from.

use std::{convert::Infallible, time::Duration};

use crate::{
    account,
    config::{registry, DemoConfig},
    session::{has_session_cookie, Sessions},
    store::DemoStore,
    tokens::{json_response, Issuer},
    users::{too_many_attempts, UserAuthError, Users},
    Args,
};
use axum::{body::Body, response::IntoResponse, Router};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::Full;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_oauth_revoke::{
    admin::AdminRevocations,
    client_auth::{decode_basic, AuthFailureLimiter, ClientAssertions, RemoteAddr},
    cors::CorsPolicy,
    deadline::BodyDeadlineLayer,
    dpop::DpopVerifier,
    endpoint::Endpoint,
    error::{ErrorCode, OAuthError},
    guard::BearerGuardLayer,
    introspect::Introspector,
    jose::SigningKey,
    jwt::{JwtAccessTokens, JwtCheck},
    metadata::AuthorizationServerMetadata,
    owner::{OwnerAuthorizations, ResourceOwner},
    serve::HttpService,
    set::{
        self,
        poll::{PollService, SetQueue},
        push::{PushOptions, Pusher},
        snapshot::SnapshotService,
        SetIssuer,
    },
    store::{log::EventLog, TokenRecord, TokenStore},
    trace::{LoggedClient, RequestLogLayer},
    RevocationEndpoint,
};

// ---------------------------------------------------------------------------------------
// The application.

/// The poll queue and the pushers of a store with a durable log: a cursor per client that
/// may read events, from the first start on, and one per `--event-webhook`.
async fn follow_log<S>(
    store: &S,
    args: &Args,
    config: &DemoConfig,
    issuer: &SetIssuer,
    flag: &str,
) -> Result<SetQueue, String>
where
    S: EventLog + TokenStore + Clone,
{
    let queue = SetQueue::follow(store.clone(), issuer.clone(), "default");
    for client in config.clients.iter().filter(|c| c.introspect) {
        queue
            .open(&client.id)
            .await
            .map_err(|e| format!("{flag}: {e}"))?;
    }
    if !args.event_webhooks.is_empty() {
        let pusher = Pusher::follow(
            store.clone(),
            issuer.clone(),
            &args.event_webhooks,
            PushOptions::default(),
        )
        .await
        .map_err(|e| format!("--event-webhook: {e}"))?;
        // It delivers for as long as it lives: as long as the store.
        store.events().attach(move |_| {
            let _ = &pusher;
        });
    }
    Ok(queue)
}

pub(crate) async fn app(
    args: &Args,
    config: &DemoConfig,
    store: DemoStore,
    issuer_url: &str,
    key: SigningKey,
) -> Result<impl HttpService, String> {
    // The request log, and the response annotations it reads, only when it is on: with
    // RUST_LOG=warn a request pays for neither.
    let log = tracing::enabled!(tracing::Level::INFO);
    let registry = registry(config)?;
    let limiter = AuthFailureLimiter::new(20, Duration::from_secs(60));
    let users = Users::new(config);
    // The token endpoint serves browser apps too (a public client's password grant).
    let token_cors = CorsPolicy::new()
        .origins(&args.cors_origins)
        .map_err(|e| format!("--cors-origin: {e}"))?;

    // JWT access tokens: issued with --jwt; revoked, introspected and checked always (a
    // JWT is recognised by its shape). The audience is the issuer's own API (/userinfo).
    let jwts = JwtAccessTokens::new(issuer_url, issuer_url, key.clone());

    // Every revocation of the store, whatever its path, becomes a SET: kept for polling
    // (RFC 8936) and pushed to each --event-webhook (RFC 8935). Set up before serving.
    let set_issuer = SetIssuer::new(issuer_url, key.clone());
    let events = match &store {
        // PostgreSQL and Redis: delivered from the store's durable log (the outbox, the
        // stream) by cursor, at least once, whatever node dies and whichever node a
        // receiver polls.
        DemoStore::Postgres(pg) => follow_log(pg, args, config, &set_issuer, "--postgres").await?,
        DemoStore::Redis(redis) => follow_log(redis, args, config, &set_issuer, "--redis").await?,
        // Memory: from this node's events, as they happen.
        DemoStore::Memory(_) => {
            let queue = SetQueue::default();
            let pusher = if args.event_webhooks.is_empty() {
                None
            } else {
                Some(
                    Pusher::spawn(&args.event_webhooks, PushOptions::default())
                        .map_err(|e| format!("--event-webhook: {e}"))?,
                )
            };
            set::attach(
                store.events(),
                set_issuer.clone(),
                Some(queue.clone()),
                pusher,
            );
            queue
        }
    };
    let jwks = key.jwks();
    let jwks = service_fn(move |_req: http::Request<Body>| {
        let mut response = http::Response::new(Full::new(Bytes::from(jwks.clone())));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jwk-set+json"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        async move { Ok::<_, Infallible>(response) }
    });
    // Receivers poll with Basic, or with an access token of theirs (got by any of the
    // token endpoint's methods: private_key_jwt, mutual TLS, a secret).
    let poll = PollService::new(events.clone(), registry.clone())
        .bearer_tokens(JwtCheck::new(store.clone(), jwts.clone()))
        .realm("demo")
        .limit_failures(limiter.clone());
    // What is still revoked, for a resource server that starts after the revocations:
    // the store's durable history as SETs, to the clients that may poll.
    let snapshot = SnapshotService::new(
        store.clone(),
        SetIssuer::new(issuer_url, key.clone()),
        registry.clone(),
    )
    // A receiver's poll cursor is opened before its snapshot is read: nothing falls
    // between the two.
    .queue(events.clone())
    .bearer_tokens(JwtCheck::new(store.clone(), jwts.clone()))
    .realm("demo")
    .limit_failures(limiter.clone());
    let admin = AdminRevocations::new(store.clone(), registry.clone())
        .realm("demo")
        .limit_failures(limiter.clone());

    // private_key_jwt at every endpoint whose body is the client's: the assertions' jtis
    // are kept in the store, so that every node sharing it refuses a replay.
    // The token endpoint's URL is accepted at every endpoint too (OpenID Connect asks clients
    // for it).
    let assertions = ClientAssertions::new(issuer_url, store.clone())
        .audience(format!("{}/oauth2/token", issuer_url.trim_end_matches('/')));
    let admin = admin.client_assertions(assertions.clone());
    // Mutual TLS: where the server asks for client certificates, they authenticate.
    let mtls = args.client_ca.is_some() || args.self_signed_clients;
    // DPoP (RFC 9449): the token endpoint binds access tokens to the key of a proof sent
    // with the request, /userinfo admits them only with a proof of that key, and a public
    // client revokes one only with such a proof; the proofs' jtis are kept in the store, as
    // the assertions' are.
    let dpop = DpopVerifier::new(store.clone());
    let revoke = RevocationEndpoint::builder(registry.clone(), store.clone())
        .jwt(jwts.clone())
        .client_assertions(assertions.clone())
        .client_certificates(mtls)
        .bound_tokens_need_proof(
            dpop.clone(),
            &format!("{}/oauth2/revoke", issuer_url.trim_end_matches('/')),
        )
        .realm("demo")
        .limit_failures(limiter.clone())
        .cors_origins(&args.cors_origins)
        .jsonp(true)
        // The request log below reads the client and the outcome from the response.
        .annotate_responses(log)
        .log_outcomes(!log)
        .build()
        .map_err(|e| format!("--cors-origin: {e}"))?;

    let issuer = Issuer {
        store: store.clone(),
        users: users.clone(),
        access_token_ttl: Duration::from_secs(args.access_token_ttl),
        jwts: args.jwt.then(|| jwts.clone()),
        dpop: dpop.clone(),
        token_url: format!("{}/oauth2/token", issuer_url.trim_end_matches('/')),
    };
    // The token endpoint is the crate's pipeline (CORS, form, client authentication and
    // its limiter, the origin check) with the demo's own last step. It serves browser apps
    // too (a public client's password grant).
    let token = Endpoint::with_step(registry.clone(), issuer)
        .client_assertions(assertions.clone())
        .client_certificates(mtls)
        .realm("demo")
        .limit_failures(limiter.clone())
        .cors_origins(&args.cors_origins)
        .annotate_responses(log)
        .log_outcomes(!log)
        .build()
        .map_err(|e| format!("--cors-origin: {e}"))?;

    // Introspection (RFC 7662): the same pipeline with the crate's introspection step.
    let introspect = Endpoint::with_step(
        registry.clone(),
        Introspector::new(store.clone())
            .issuer(issuer_url)
            .jwt(jwts.clone()),
    )
    .client_assertions(assertions)
    .client_certificates(mtls)
    .realm("demo")
    .limit_failures(limiter)
    .cors_origins(&args.cors_origins)
    .annotate_responses(log)
    .log_outcomes(!log)
    .build()
    .map_err(|e| format!("--cors-origin: {e}"))?;

    // RFC 8414 metadata, from the endpoints themselves.
    let metadata = AuthorizationServerMetadata::new(issuer_url)
        .map_err(|e| format!("--issuer: {e}"))?
        .token_endpoint("/oauth2/token", &token)
        .revocation_endpoint("/oauth2/revoke", &revoke)
        .introspection_endpoint("/oauth2/introspect", &introspect)
        .jwks_uri("/.well-known/jwks.json")
        .grant_types_supported(["client_credentials", "password", "refresh_token"])
        .strings(
            "dpop_signing_alg_values_supported",
            dpop.algorithms_supported().iter().copied(),
        )
        .flag("tls_client_certificate_bound_access_tokens", mtls)
        .into_service();

    let userinfo = ServiceBuilder::new()
        .layer(
            BearerGuardLayer::new(JwtCheck::new(store.clone(), jwts))
                .realm("demo")
                .dpop(dpop, issuer_url),
        )
        .service(service_fn(|req: http::Request<Body>| async move {
            let record = req.extensions().get::<TokenRecord>().expect("bearer guard");
            let sub = record.owner.as_deref().unwrap_or(&record.client_id);
            let mut response = json_response(
                StatusCode::OK,
                serde_json::json!({ "sub": sub, "client_id": &*record.client_id }),
            );
            response
                .extensions_mut()
                .insert(LoggedClient(record.client_id.clone()));
            Ok::<_, Infallible>(response.map(Full::new))
        }));

    let soap_routes =
        crate::soap::routes(store.clone(), registry.clone(), users.clone(), issuer_url);
    let owner_api =
        OwnerAuthorizations::new(store, registry.clone()).mount_path("/users/me/authorizations");
    let sessions = Sessions::new(!args.plain);
    let owner_users = users.clone();
    let owner_registry = registry.clone();
    let owner_sessions = sessions.clone();
    let owners = service_fn(move |mut req: http::Request<Body>| {
        let users = owner_users.clone();
        let owner_api = owner_api.clone();
        let sessions = owner_sessions.clone();
        let (cors, registry) = (token_cors.clone(), owner_registry.clone());
        async move {
            // The resource owner's page: its session cookie stands in for Basic (and its
            // CSRF token must come with any change). An `Authorization` header wins.
            if !req.headers().contains_key(header::AUTHORIZATION)
                && has_session_cookie(req.headers())
            {
                return match sessions.authorize(&req) {
                    Ok(session) => {
                        req.extensions_mut()
                            .insert(ResourceOwner::new(session.user));
                        owner_api.oneshot(req).await
                    }
                    Err(err) => Ok(err.to_response()),
                };
            }
            // A page on another site cannot spend a user's password budget.
            if let Err(err) = cors.refuse_unknown_origin(&registry, req.headers()).await {
                return Ok::<_, Infallible>(err.to_response());
            }
            if req.headers().get_all(header::AUTHORIZATION).iter().count() > 1 {
                return Ok(OAuthError::invalid_request(
                    "the authorization header must not be repeated",
                )
                .to_response());
            }
            let addr = req.extensions().get::<RemoteAddr>().copied();
            let user = match req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(decode_basic)
            {
                Some((name, password)) => match users.authenticate(&name, &password, addr) {
                    Ok(()) => Some(name),
                    Err(UserAuthError::Limited(retry)) => {
                        return Ok::<_, Infallible>(too_many_attempts(retry).to_response());
                    }
                    Err(UserAuthError::Invalid) => None,
                },
                None => None,
            };
            let Some(name) = user else {
                let mut response: http::Response<tower_oauth_revoke::body::Body> = OAuthError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::AccessDenied,
                    "the resource owner must authenticate",
                )
                .to_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"users\""),
                );
                return Ok::<_, Infallible>(response);
            };
            req.extensions_mut().insert(ResourceOwner::new(name));
            owner_api.oneshot(req).await
        }
    });

    // The owner API and the resource owner's page, with the page's security headers.
    let owner_routes = account::protected(
        Router::new()
            .route_service("/users/me/authorizations", owners.clone())
            .route_service("/users/me/authorizations/{client_id}", owners),
    );

    let router = Router::new()
        .route_service("/oauth2/revoke", revoke)
        .route_service("/oauth2/token", token)
        .route_service("/oauth2/introspect", introspect)
        .route_service("/.well-known/oauth-authorization-server", metadata)
        .route_service("/.well-known/jwks.json", jwks)
        .route_service("/oauth2/events", poll)
        .route_service("/oauth2/events/snapshot", snapshot)
        .route_service("/admin/revocations", admin)
        .route_service("/userinfo", userinfo)
        .merge(owner_routes)
        .merge(soap_routes)
        .merge(account::routes(sessions, users))
        .fallback(|| async {
            let response: http::Response<Full<Bytes>> =
                OAuthError::invalid_request("no such endpoint")
                    .with_status(StatusCode::NOT_FOUND)
                    .to_response();
            response.into_response()
        });
    // What applies to every request wraps the router once, not each of its routes: one
    // request log line per request, and a deadline on every request body.
    Ok(ServiceBuilder::new()
        .layer(RequestLogLayer::new())
        .layer(BodyDeadlineLayer::new(Duration::from_secs(10)))
        .service(router))
}
