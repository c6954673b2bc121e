//! The endpoint in a real browser: Debian's `chromium`, headless, against real servers on
//! loopback. A page from an allowed origin revokes with `fetch()`; a page from another
//! origin is blocked by the browser and revokes nothing; `<script>` JSONP requests call
//! their callback on success and on error.
//!
//! Pages are served by a second tiny server on other loopback ports (another port is
//! another origin). Each page writes its results into the DOM, which `chromium
//! --dump-dom` prints once the page is idle (`--virtual-time-budget`).
//!
//! Without a browser the test fails, unless `SKIP_BROWSER_TESTS=1` says to skip it.
//! `CHROMIUM` names the browser binary (default: `chromium`, then `chromium-browser`,
//! `google-chrome`); `.ci/browser.sh` installs it.

mod common;

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower_oauth_revoke::{
    client_auth::{Client, MemoryClientRegistry},
    store::{GrantId, MemoryStore, TokenHash, TokenKind, TokenRecord, TokenStore},
    RevocationEndpoint,
};

/// The script shared by the pages: results go into `#result` as JSON between markers.
const COMMON_JS: &str = r#"
const api = "http://" + new URLSearchParams(location.search).get("api") + "/oauth2/revoke";
const out = {};
function finish() {
  document.getElementById("result").textContent = "RESULT" + JSON.stringify(out) + "END";
}
async function tryFetch(name, init) {
  try {
    const r = await fetch(api, init);
    out[name] = { status: r.status, body: await r.text(),
                  www: r.headers.get("WWW-Authenticate") };
  } catch (e) {
    out[name] = { blocked: e.name };
  }
}
const form = { "Content-Type": "application/x-www-form-urlencoded" };
"#;

const FETCH_PAGE: &str = r#"
(async () => {
  // A simple request (no preflight).
  await tryFetch("revoke", { method: "POST", headers: form, body: "token=t-fetch&client_id=spa" });
  // Authorization forces a preflight; the 401 is readable, WWW-Authenticate exposed.
  await tryFetch("unauthorized", { method: "POST",
    headers: { ...form, "Authorization": "Basic " + btoa("server:wrong") },
    body: "token=t-server" });
  finish();
})();
"#;

const JSONP_PAGE: &str = r#"
function load(query, name) {
  return new Promise((resolve) => {
    const s = document.createElement("script");
    s.src = api + "?" + query;
    s.onerror = () => { out[name] = "script error"; resolve(); };
    s.onload = () => { if (!(name in out)) out[name] = "callback not called"; resolve(); };
    document.body.appendChild(s);
  });
}
window.app = {
  revoked: function () { out.success = { args: arguments.length }; },
  failed: function (err) { out.error = err; },
};
(async () => {
  await load("token=t-jsonp&client_id=spa&callback=app.revoked", "success");
  await load("token=t-other&client_id=nobody&callback=app.failed", "error");
  finish();
})();
"#;

fn page(script: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"></head><body>\
         <pre id=\"result\">pending</pre><script>{COMMON_JS}{script}</script></body></html>"
    )
}

/// The tiny page server: `/fetch` and `/jsonp`.
async fn serve_pages() -> SocketAddr {
    common::serve(tower::service_fn(
        |req: Request<hyper::body::Incoming>| async move {
            let html = match req.uri().path() {
                "/fetch" => page(FETCH_PAGE),
                "/jsonp" => page(JSONP_PAGE),
                _ => String::new(),
            };
            let mut response = Response::new(Full::new(Bytes::from(html)));
            response
                .headers_mut()
                .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            Ok::<_, Infallible>(response)
        },
    ))
    .await
}

fn browser_candidates() -> Vec<String> {
    match std::env::var("CHROMIUM") {
        Ok(b) if !b.is_empty() => vec![b],
        _ => ["chromium", "chromium-browser", "google-chrome"]
            .map(String::from)
            .to_vec(),
    }
}

/// A fresh, empty profile directory, removed on drop.
struct Profile(PathBuf);

impl Profile {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "tower-oauth-revoke-chromium-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Loads `url` in headless chromium and returns the DOM once the page is idle, or `None`
/// when the browser cannot be started.
async fn dump_dom(browser: &str, url: &str) -> Option<String> {
    let profile = Profile::new();
    let child = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-proxy-server",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let output = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("chromium did not finish within 90 s")
        .ok()?;
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    if dom.is_empty() {
        eprintln!(
            "chromium printed no DOM: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    Some(dom)
}

/// The JSON results a page wrote into `#result`.
fn results(dom: &str) -> serde_json::Value {
    let start = dom
        .find("RESULT")
        .unwrap_or_else(|| panic!("no results in the page: {dom}"))
        + "RESULT".len();
    let end = dom[start..].find("END").expect("end marker") + start;
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("bad results ({e}): {json}"))
}

/// The first browser that starts and runs a script, if any.
async fn find_browser() -> Option<String> {
    for candidate in browser_candidates() {
        let probe = "data:text/html,<p id=p>no</p><script>p.textContent='js-ok'</script>";
        if let Some(dom) = dump_dom(&candidate, probe).await {
            if dom.contains("js-ok") {
                return Some(candidate);
            }
        }
    }
    None
}

async fn issue(store: &MemoryStore, token: &str, client: &str) {
    let expires = SystemTime::now() + Duration::from_secs(600);
    store
        .issue(
            TokenHash::of(token),
            TokenRecord::new(TokenKind::AccessToken, client, GrantId::random(), expires),
        )
        .await
        .unwrap();
}

async fn active(store: &MemoryStore, token: &str) -> bool {
    store
        .inspect(&TokenHash::of(token))
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_from_a_real_browser() {
    let Some(browser) = find_browser().await else {
        common::skip_or_fail(
            "SKIP_BROWSER_TESTS",
            "no headless chromium could be started",
        );
        return;
    };

    let allowed_pages = serve_pages().await;
    let other_pages = serve_pages().await;
    let allowed_origin = format!("http://{allowed_pages}");

    let store = MemoryStore::new();
    for (token, client) in [
        ("t-fetch", "spa"),
        ("t-server", "server"),
        ("t-jsonp", "spa"),
        ("t-other", "spa"),
    ] {
        issue(&store, token, client).await;
    }
    let endpoint = RevocationEndpoint::builder(
        MemoryClientRegistry::new([
            Client::public("spa"),
            Client::confidential("server", "s3cret"),
        ]),
        store.clone(),
    )
    .cors_origins([allowed_origin.as_str()])
    .jsonp(true)
    .build()
    .unwrap();
    let app = axum::Router::new().route_service("/oauth2/revoke", endpoint);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // A page from a disallowed origin: the browser blocks the response, and the server
    // refused the request before revoking.
    let dom = dump_dom(&browser, &format!("http://{other_pages}/fetch?api={api}"))
        .await
        .expect("chromium ran");
    let r = results(&dom);
    assert_eq!(r["revoke"]["blocked"], "TypeError", "{r}");
    assert_eq!(r["unauthorized"]["blocked"], "TypeError", "{r}");
    assert!(
        active(&store, "t-fetch").await,
        "a disallowed origin revoked a token"
    );

    // A page from the allowed origin revokes with fetch() and reads errors.
    let dom = dump_dom(&browser, &format!("http://{allowed_pages}/fetch?api={api}"))
        .await
        .expect("chromium ran");
    let r = results(&dom);
    assert_eq!(r["revoke"]["status"], 200, "{r}");
    assert_eq!(r["revoke"]["body"], "", "{r}");
    assert!(
        !active(&store, "t-fetch").await,
        "the allowed origin did not revoke"
    );
    assert_eq!(r["unauthorized"]["status"], 401, "{r}");
    assert!(r["unauthorized"]["body"]
        .as_str()
        .unwrap()
        .contains("invalid_client"));
    assert_eq!(r["unauthorized"]["www"], "Basic realm=\"oauth\"", "{r}");
    assert!(active(&store, "t-server").await);

    // JSONP with <script>: the callback runs on success (no argument) and on error.
    let dom = dump_dom(&browser, &format!("http://{other_pages}/jsonp?api={api}"))
        .await
        .expect("chromium ran");
    let r = results(&dom);
    assert_eq!(r["success"]["args"], 0, "{r}");
    assert!(!active(&store, "t-jsonp").await, "JSONP did not revoke");
    assert_eq!(r["error"]["error"], "invalid_client", "{r}");
    assert!(active(&store, "t-other").await);
}
