//! Checks every [`ClientRegistry`] should pass, for a registry's own tests.
//!
//! [`check`] asks the registry about the clients the test registered in it and panics with
//! a message naming the rule that failed. Above all, it checks that the two questions the
//! endpoints ask agree: a CORS preflight asks
//! [`origin_registered`](ClientRegistry::origin_registered), the request that follows is
//! checked against the client's own origins. If they disagree, a browser sees a CORS error
//! while the request itself was served.
//!
//! ```
//! use tower_oauth_revoke::client_auth::{conformance, Client, MemoryClientRegistry};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clients = [
//!     Client::public("spa").with_origins(["https://app.example.com"]).unwrap(),
//!     Client::confidential("server", "a-long-random-secret"),
//! ];
//! conformance::check(&MemoryClientRegistry::new(clients.clone()), clients).await;
//! # }
//! ```

use http::HeaderValue;

use super::{Client, ClientRegistry};

/// Origins no test registers: `origin_registered` must refuse them.
const NEVER_REGISTERED: [&str; 4] = [
    "https://conformance-probe.invalid",
    "http://conformance-probe.invalid:8080",
    "null",
    "https://app.example.com.conformance-probe.invalid",
];

/// Checks `registry` against `clients`, the clients registered in it (every one of them, or
/// at least every one that lists an origin, for the origin checks to mean anything).
///
/// - each client is found by its id, with the same kind, methods, origins and capabilities;
/// - an unknown id is not found;
/// - every origin a client lists is `origin_registered`, and allowed for that client;
/// - an origin no client lists is not `origin_registered`: neither a probe origin, nor a
///   listed origin with another scheme or port.
///
/// # Panics
///
/// On the first rule the registry breaks, or when the registry fails.
pub async fn check<R: ClientRegistry>(registry: &R, clients: impl IntoIterator<Item = Client>) {
    let clients: Vec<Client> = clients.into_iter().collect();
    let listed: Vec<&str> = clients
        .iter()
        .flat_map(|c| c.origins().iter().map(|o| o.as_str()))
        .collect();

    for client in &clients {
        let found = registry
            .find_client(client.id())
            .await
            .unwrap_or_else(|e| panic!("find_client({:?}) failed: {e}", client.id()))
            .unwrap_or_else(|| panic!("find_client({:?}) found nothing", client.id()));
        assert_eq!(
            found.id(),
            client.id(),
            "find_client returned another client"
        );
        assert_eq!(
            found.kind(),
            client.kind(),
            "client {:?}: kind",
            client.id()
        );
        assert_eq!(
            found.auth_methods(),
            client.auth_methods(),
            "client {:?}: authentication methods",
            client.id()
        );
        assert_eq!(
            found.origins(),
            client.origins(),
            "client {:?}: origins",
            client.id()
        );
        assert_eq!(
            (found.may_introspect_any(), found.is_admin()),
            (client.may_introspect_any(), client.is_admin()),
            "client {:?}: capabilities",
            client.id()
        );
        for origin in client.origins() {
            assert!(
                found.allows_origin(origin.as_header_value()),
                "client {:?} does not allow its own origin {origin}",
                client.id()
            );
            let registered = registry
                .origin_registered(origin.as_header_value())
                .await
                .unwrap_or_else(|e| panic!("origin_registered({origin}) failed: {e}"));
            assert!(
                registered,
                "client {:?} lists the origin {origin}, but origin_registered answers false: \
                 preflights from it would get no CORS headers while its requests are served",
                client.id()
            );
        }
    }

    let unknown = format!("conformance-unknown-{:016x}", rand::random::<u64>());
    assert!(
        registry
            .find_client(&unknown)
            .await
            .unwrap_or_else(|e| panic!("find_client of an unknown id failed: {e}"))
            .is_none(),
        "find_client found a client for an id never registered"
    );

    let mut probes: Vec<String> = NEVER_REGISTERED.iter().map(|p| p.to_string()).collect();
    for origin in &listed {
        probes.extend(variants(origin));
    }
    for probe in probes.iter().filter(|p| !listed.contains(&p.as_str())) {
        let Ok(value) = HeaderValue::from_str(probe) else {
            continue;
        };
        let registered = registry
            .origin_registered(&value)
            .await
            .unwrap_or_else(|e| panic!("origin_registered({probe}) failed: {e}"));
        assert!(
            !registered,
            "origin_registered answers true for {probe}, which no client lists"
        );
    }
}

/// The same origin with the other scheme, and with another port.
fn variants(origin: &str) -> Vec<String> {
    let (scheme, rest) = origin.split_once("://").unwrap_or(("https", origin));
    let other_scheme = if scheme == "https" { "http" } else { "https" };
    let host = match rest.rsplit_once(':') {
        // A port, not the end of an IPv6 literal.
        Some((host, port)) if !port.contains(']') => host,
        _ => rest,
    };
    vec![
        format!("{other_scheme}://{rest}"),
        format!("{scheme}://{host}:1"),
    ]
}
