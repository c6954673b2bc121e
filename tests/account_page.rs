//! The resource owner's page (`GET /account` of the demo server), end to end.
//!
//! With a real browser: Debian's `chromium`, headless, driven over WebDriver by
//! `chromedriver` (spoken to as JSON over HTTP), against the demo server binary on
//! loopback. The owner signs in, revokes one app, then every app, and the tokens those apps
//! hold stop working at `/userinfo` while another owner's keep working; client names that
//! look like HTML are shown as text.
//!
//! Without a browser: the session cookie's attributes, the CSRF defence (a change without
//! the session's token is refused with 403 and changes nothing), signing out on the
//! server, the shared password limiter, the page's security headers, and a log at `trace`
//! that never holds a password, a session id or a CSRF token.
//!
//! Without `chromedriver` or a browser the browser tests fail, unless
//! `SKIP_BROWSER_TESTS=1` says to skip them. `CHROMEDRIVER` names the driver (default
//! `chromedriver`), `CHROMIUM` the browser (default: `chromium`, then `chromium-browser`,
//! `google-chrome`); `.ci/browser.sh` installs both. `UPDATE_SCREENSHOT=1` rewrites
//! `docs/account-page.png` with what the page looks like after sign-in.

mod common;

use std::{
    future::Future,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use common::Process;
use serde_json::{json, Value};

const APP: &str = "YmxD0jDOIfiBkD8TPLYOfxNSIg4a";
const APP_SECRET: &str = "FJdj7G956wqKw3d4X0BWONMIu00a";
const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// The demo server and plain HTTP.

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "tower-oauth-revoke-{what}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The demo server over plain HTTP, with the built-in data or the TOML `config`.
fn start_demo(config: Option<&str>, dir: &TempDir) -> Process {
    start_demo_with(&["--plain"], config, dir)
}

/// The demo server with `flags`, with the built-in data or the TOML `config`.
fn start_demo_with(flags: &[&str], config: Option<&str>, dir: &TempDir) -> Process {
    let mut args = flags.to_vec();
    args.extend(["--listen", "127.0.0.1:0"]);
    let path = dir.0.join("demo.toml");
    if let Some(text) = config {
        std::fs::write(&path, text).unwrap();
        args.push("--config");
        args.push(path.to_str().unwrap());
    }
    Process::start(&common::demo_server_binary(), &args)
}

/// An HTTP client; over HTTPS it accepts the demo's self-signed certificate (loopback
/// only).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// An access token for `user` from client `id` by the password grant.
async fn password_grant(base: &str, id: &str, secret: &str, user: &str, password: &str) -> String {
    let reply = http()
        .post(format!("{base}/oauth2/token"))
        .header("authorization", common::basic(id, secret))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "token for {user} from {id}");
    let body: Value = reply.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// The status `/userinfo` gives `token`.
async fn userinfo(base: &str, token: &str) -> u16 {
    http()
        .get(format!("{base}/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

// ---------------------------------------------------------------------------------------
// WebDriver.

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn on_path(name: &str) -> Option<PathBuf> {
    let candidate = PathBuf::from(name);
    if candidate.is_absolute() {
        return candidate.is_file().then_some(candidate);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn driver_binary() -> Option<PathBuf> {
    match std::env::var("CHROMEDRIVER") {
        Ok(d) if !d.is_empty() => on_path(&d),
        _ => on_path("chromedriver"),
    }
}

fn browser_binary() -> Option<PathBuf> {
    match std::env::var("CHROMIUM") {
        Ok(b) if !b.is_empty() => on_path(&b),
        _ => ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find_map(on_path),
    }
}

/// A headless browser session: `chromedriver` on a free loopback port, and one WebDriver
/// session in it. Ended (browser and driver) on drop.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    _profile: TempDir,
}

impl Browser {
    /// Starts the driver and a browser, or says why it cannot.
    async fn start() -> Result<Self, String> {
        let driver_path = driver_binary().ok_or("no chromedriver found")?;
        let browser_path = browser_binary().ok_or("no chromium found")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", driver_path.display()))?;
        let profile = TempDir::new("chromium-profile");
        let mut browser = Self {
            driver,
            port,
            session: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            _profile: profile,
        };
        // The driver is ready when its status says so.
        let deadline = Instant::now() + DEADLINE;
        loop {
            let ready = browser
                .http
                .get(format!("http://127.0.0.1:{port}/status"))
                .send()
                .await;
            if let Ok(reply) = ready {
                if let Ok(status) = reply.json::<Value>().await {
                    if status["value"]["ready"] == true {
                        break;
                    }
                }
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                // The demo's HTTPS certificate is self-signed, made at start-up.
                "acceptInsecureCerts": true,
                "goog:chromeOptions": {
                "binary": browser_path,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--no-proxy-server",
                    "--window-size=900,720",
                    format!("--user-data-dir={}", browser._profile.0.display()),
                ],
            }}}
        });
        let created = browser
            .command(reqwest::Method::POST, "/session", Some(capabilities))
            .await?;
        browser.session = created["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {created}"))?
            .to_owned();
        Ok(browser)
    }

    /// One WebDriver command; its `value`, or the driver's error.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let reply = req.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = reply.status();
        let body: Value = reply.json().await.map_err(|e| format!("{path}: {e}"))?;
        if status.is_success() {
            Ok(body["value"].clone())
        } else {
            Err(format!("{path}: {status} {}", body["value"]))
        }
    }

    /// A command on this session.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        self.command(method, &path, body).await
    }

    /// A command on this session that must succeed.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The elements `css` selects now (possibly none).
    async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
            .collect()
    }

    /// The first element `css` selects inside `element`.
    async fn find_in(&self, element: &str, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                &format!("/element/{element}/element"),
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    /// Whether `element` is displayed; false when it has left the page meanwhile.
    async fn displayed(&self, element: &str) -> bool {
        self.try_call(
            reqwest::Method::GET,
            &format!("/element/{element}/displayed"),
            None,
        )
        .await
        .is_ok_and(|shown| shown == true)
    }

    /// The first element `css` selects that is displayed, once there is one.
    async fn wait_displayed(&self, css: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            for element in self.find_all(css).await {
                if self.displayed(&element).await {
                    return element;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {css} to be displayed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text(&self, element: &str) -> String {
        let text = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                None,
            )
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    async fn attribute(&self, element: &str, name: &str) -> Option<String> {
        let value = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{element}/attribute/{name}"),
                None,
            )
            .await;
        value.as_str().map(str::to_owned)
    }

    async fn type_into(&self, element: &str, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// The client ids of the apps listed now, in page order; `None` when the list changed
    /// while being read.
    async fn listed_apps(&self) -> Option<Vec<String>> {
        let mut ids = Vec::new();
        for element in self.find_all("[data-client-id]").await {
            let id = self
                .try_call(
                    reqwest::Method::GET,
                    &format!("/element/{element}/attribute/data-client-id"),
                    None,
                )
                .await
                .ok()?;
            ids.push(id.as_str()?.to_owned());
        }
        Some(ids)
    }

    /// Waits until the page lists exactly `expected` (any order).
    async fn wait_for_apps(&self, expected: &[&str]) {
        let mut want: Vec<&str> = expected.to_vec();
        want.sort_unstable();
        wait_until(&format!("the list to be {want:?}"), || async {
            let Some(mut listed) = self.listed_apps().await else {
                return false;
            };
            listed.sort_unstable();
            listed == want
        })
        .await;
    }

    async fn status_text(&self) -> String {
        let status = self.find_all("[aria-live=polite]").await;
        assert_eq!(status.len(), 1, "one aria-live region");
        self.text(&status[0]).await
    }

    /// Signs in with the page's form.
    async fn sign_in(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/account")).await;
        let name = self.wait_displayed("input[name=username]").await;
        let pass = self.wait_displayed("input[name=password]").await;
        self.type_into(&name, user).await;
        self.type_into(&pass, password).await;
        let submit = self.wait_displayed("form button[type=submit]").await;
        self.click(&submit).await;
    }

    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (the driver closes the browser), then the driver. Blocking and
        // minimal: a drop cannot await.
        if !self.session.is_empty() {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    stream,
                    "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session, self.port
                );
                // The answer comes once the browser has closed.
                let _ = stream.read(&mut [0; 512]);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Polls `check` until it holds, failing the test after [`DEADLINE`].
async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A browser, or `None` after `skip_or_fail` when none can be started here.
async fn browser() -> Option<Browser> {
    match Browser::start().await {
        Ok(browser) => Some(browser),
        Err(why) => {
            common::skip_or_fail(
                "SKIP_BROWSER_TESTS",
                &format!("no headless chromium through chromedriver: {why}"),
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_revokes_one_app_then_all_from_the_page() {
    let Some(browser) = browser().await else {
        return;
    };
    let dir = TempDir::new("account-page");
    let demo = start_demo(None, &dir);
    let base = demo.url.as_str();

    let alice_app = password_grant(base, APP, APP_SECRET, "alice", "alice-password").await;
    let alice_other = password_grant(
        base,
        "other-client",
        "other-secret",
        "alice",
        "alice-password",
    )
    .await;
    let bob_app = password_grant(base, APP, APP_SECRET, "bob", "bob-password").await;

    browser.sign_in(base, "alice", "alice-password").await;
    browser.wait_for_apps(&[APP, "other-client"]).await;
    wait_until("the sign-in to be announced", || async {
        browser.status_text().await.contains("2 apps hold access")
    })
    .await;

    // Each app shows its name and id, and a Revoke button.
    for element in browser.find_all("[data-client-id]").await {
        let id = browser.attribute(&element, "data-client-id").await.unwrap();
        let text = browser.text(&element).await;
        let name = if id == APP {
            "WSO2 guide sample app"
        } else {
            "Another app"
        };
        assert!(text.contains(name) && text.contains(&id), "{text:?}");
        let button = browser.find_in(&element, "button").await;
        assert_eq!(browser.text(&button).await, "Revoke");
    }
    // The session cookie as the browser keeps it: out of scripts' reach, never cross-site.
    let cookies = browser.call(reqwest::Method::GET, "/cookie", None).await;
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "account_session")
        .unwrap_or_else(|| panic!("no session cookie in {cookies}"));
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");

    if std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/account-page.png");
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")).unwrap();
        std::fs::write(path, browser.screenshot().await).unwrap();
        eprintln!("wrote {path}");
    }

    // Revoke one app: it leaves the list without a reload, and its token stops working.
    let other = browser
        .find_all("[data-client-id=\"other-client\"]")
        .await
        .pop()
        .unwrap();
    let revoke = browser.find_in(&other, "button").await;
    browser.click(&revoke).await;
    browser.wait_for_apps(&[APP]).await;
    assert_eq!(userinfo(base, &alice_other).await, 401);
    assert_eq!(userinfo(base, &alice_app).await, 200);
    wait_until("the revocation to be announced", || async {
        browser
            .status_text()
            .await
            .contains("Revoked access for Another app")
    })
    .await;

    // A reload keeps the session and shows the same list.
    browser.goto(&format!("{base}/account")).await;
    browser.wait_for_apps(&[APP]).await;

    // Sign out of all apps: the list empties, every token of alice's stops working, bob's
    // keep working.
    let all = browser.wait_displayed("#revoke-all").await;
    assert_eq!(browser.text(&all).await, "Sign out of all apps");
    browser.click(&all).await;
    browser.wait_for_apps(&[]).await;
    wait_until("the empty list to be said", || async {
        let none = browser.find_all("#no-apps").await;
        browser.displayed(&none[0]).await
    })
    .await;
    assert_eq!(userinfo(base, &alice_app).await, 401);
    assert_eq!(userinfo(base, &bob_app).await, 200);

    // Signing out shows the form again; a reload finds no session.
    let sign_out = browser.wait_displayed("#signout").await;
    browser.click(&sign_out).await;
    browser.wait_displayed("input[name=username]").await;
    browser.goto(&format!("{base}/account")).await;
    browser.wait_displayed("input[name=password]").await;
    assert!(browser.find_all("[data-client-id]").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_over_https() {
    let Some(browser) = browser().await else {
        return;
    };
    let dir = TempDir::new("account-page-https");
    let demo = start_demo_with(&[], None, &dir);
    let base = demo.url.as_str();
    assert!(base.starts_with("https://"), "{base}");
    let alice_app = password_grant(base, APP, APP_SECRET, "alice", "alice-password").await;
    let alice_other = password_grant(
        base,
        "other-client",
        "other-secret",
        "alice",
        "alice-password",
    )
    .await;

    browser.sign_in(base, "alice", "alice-password").await;
    browser.wait_for_apps(&[APP, "other-client"]).await;
    let cookies = browser.call(reqwest::Method::GET, "/cookie", None).await;
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "account_session")
        .unwrap_or_else(|| panic!("no session cookie in {cookies}"));
    assert_eq!(session["secure"], true, "{session}");

    // The browser speaks HTTP/2 here: the CSRF defence must still let the page through.
    let other = browser
        .find_all("[data-client-id=\"other-client\"]")
        .await
        .pop()
        .unwrap();
    let revoke = browser.find_in(&other, "button").await;
    browser.click(&revoke).await;
    browser.wait_for_apps(&[APP]).await;
    assert_eq!(userinfo(base, &alice_other).await, 401);
    assert_eq!(userinfo(base, &alice_app).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_names_are_shown_as_text() {
    let Some(browser) = browser().await else {
        return;
    };
    let hostile_id = "<img src=x onerror=document.title='owned'>";
    let config = format!(
        r#"
[[clients]]
id = "{hostile_id}"
secret = "s1"
name = "<img src=x onerror=document.title='owned'> & <b>Co</b>"

[[clients]]
id = "plain-app"
secret = "s2"

[[users]]
name = "carol"
password = "carol-password"
"#
    );
    let dir = TempDir::new("account-page-names");
    let demo = start_demo(Some(&config), &dir);
    let base = demo.url.as_str();
    password_grant(base, hostile_id, "s1", "carol", "carol-password").await;
    let plain = password_grant(base, "plain-app", "s2", "carol", "carol-password").await;

    browser.sign_in(base, "carol", "carol-password").await;
    browser.wait_for_apps(&[hostile_id, "plain-app"]).await;
    assert!(
        browser.find_all("#apps img, #apps b").await.is_empty(),
        "a client name became HTML"
    );
    let title = browser.call(reqwest::Method::GET, "/title", None).await;
    assert_eq!(title, "Apps with access to your account");
    for element in browser.find_all("[data-client-id]").await {
        let id = browser.attribute(&element, "data-client-id").await.unwrap();
        let text = browser.text(&element).await;
        if id == hostile_id {
            assert!(
                text.contains("<img src=x onerror=document.title='owned'> & <b>Co</b>"),
                "{text:?}"
            );
            assert!(text.contains(hostile_id), "{text:?}");
        } else {
            // No name in the registry: the id stands in for it.
            assert!(text.starts_with("plain-app"), "{text:?}");
        }
    }

    // The odd id travels in the path intact: revoking it leaves the other app alone.
    let hostile = browser.find_all("[data-client-id]").await;
    let mut target = None;
    for element in hostile {
        if browser
            .attribute(&element, "data-client-id")
            .await
            .as_deref()
            == Some(hostile_id)
        {
            target = Some(element);
        }
    }
    let revoke = browser.find_in(&target.unwrap(), "button").await;
    browser.click(&revoke).await;
    browser.wait_for_apps(&["plain-app"]).await;
    assert_eq!(userinfo(base, &plain).await, 200);
}

/// Whether `html` has an attribute like `onclick=`.
fn has_event_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(at, _)| {
        let rest = &html[at + 3..];
        let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        name_len > 0 && rest[name_len..].trim_start().starts_with('=')
    })
}

/// The session over plain HTTP, as a script or another site would try it.
struct Session {
    base: String,
    cookie: String,
    csrf: String,
}

async fn sign_in(base: &str, user: &str, password: &str) -> reqwest::Response {
    http()
        .post(format!("{base}/account/session"))
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await
        .unwrap()
}

impl Session {
    async fn start(base: &str) -> Self {
        let reply = sign_in(base, "alice", "alice-password").await;
        assert_eq!(reply.status(), 200);
        let set_cookie = reply.headers()["set-cookie"].to_str().unwrap().to_owned();
        let attributes: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
        assert!(
            attributes[0].starts_with("account_session="),
            "{set_cookie}"
        );
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(attributes.contains(&attribute), "{set_cookie}");
        }
        assert!(
            !attributes.contains(&"Secure"),
            "no Secure over plain HTTP: {set_cookie}"
        );
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body["user"], "alice");
        Self {
            base: base.to_owned(),
            cookie: attributes[0].to_owned(),
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        http()
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
    }
}

async fn assert_refused(reply: reqwest::Response, status: u16) {
    assert_eq!(reply.status(), status);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "access_denied", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

#[tokio::test]
async fn changes_need_the_sessions_csrf_token() {
    let dir = TempDir::new("account-csrf");
    let demo = start_demo(None, &dir);
    let base = demo.url.as_str();
    let token = password_grant(
        base,
        "other-client",
        "other-secret",
        "alice",
        "alice-password",
    )
    .await;
    let session = Session::start(base).await;
    let revoke = "/users/me/authorizations/other-client";

    // GET needs the cookie only.
    let reply = session
        .request(reqwest::Method::GET, "/users/me/authorizations")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let list: Value = reply.json().await.unwrap();
    assert_eq!(list["authorizations"][0]["client_id"], "other-client");

    // A change with the cookie alone, a wrong token, a repeated one, or from another
    // site: 403, and nothing changes.
    for (what, request) in [
        ("no token", session.request(reqwest::Method::DELETE, revoke)),
        (
            "a wrong token",
            session
                .request(reqwest::Method::DELETE, revoke)
                .header("x-csrf-token", "not-the-token"),
        ),
        (
            "a prefix of the token",
            session
                .request(reqwest::Method::DELETE, revoke)
                .header("x-csrf-token", &session.csrf[..10]),
        ),
        (
            "the token from another site",
            session
                .request(reqwest::Method::DELETE, revoke)
                .header("x-csrf-token", &session.csrf)
                .header("origin", "http://evil.example"),
        ),
        (
            "the token, cross-site by Sec-Fetch-Site",
            session
                .request(reqwest::Method::DELETE, revoke)
                .header("x-csrf-token", &session.csrf)
                .header("sec-fetch-site", "cross-site"),
        ),
        (
            "no token, on the collection",
            session.request(reqwest::Method::DELETE, "/users/me/authorizations"),
        ),
        (
            "no token, signing out",
            session.request(reqwest::Method::DELETE, "/account/session"),
        ),
    ] {
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status(), 403, "{what}");
        assert_refused(reply, 403).await;
        assert_eq!(
            userinfo(base, &token).await,
            200,
            "{what} changed something"
        );
    }
    // The session survived the refused sign-out, and a reload gets the same token back.
    let reply = session
        .request(reqwest::Method::GET, "/account/session")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let again: Value = reply.json().await.unwrap();
    assert_eq!(again["csrf_token"], session.csrf.as_str());

    // With the token: 204, and the app's token is refused from then on.
    let reply = session
        .request(reqwest::Method::DELETE, revoke)
        .header("x-csrf-token", &session.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 204);
    assert_eq!(userinfo(base, &token).await, 401);

    // Signing out ends the session on the server: the old cookie is refused afterwards.
    let reply = session
        .request(reqwest::Method::DELETE, "/account/session")
        .header("x-csrf-token", &session.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 204);
    let cleared = reply.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    for (method, path) in [
        (reqwest::Method::GET, "/users/me/authorizations"),
        (reqwest::Method::GET, "/account/session"),
        (reqwest::Method::DELETE, "/users/me/authorizations"),
    ] {
        let reply = session
            .request(method.clone(), path)
            .header("x-csrf-token", &session.csrf)
            .send()
            .await
            .unwrap();
        assert_refused(reply, 401).await;
    }

    // Basic works as before, whatever cookie comes with it.
    let reply = http()
        .get(format!("{base}/users/me/authorizations"))
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn sign_in_is_json_and_limited_like_basic() {
    let dir = TempDir::new("account-sign-in");
    let demo = start_demo(None, &dir);
    let base = demo.url.as_str();

    // A form cannot sign in (another site's form could): JSON only.
    let reply = http()
        .post(format!("{base}/account/session"))
        .form(&[("username", "alice"), ("password", "alice-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 415);
    assert!(reply.headers().get("set-cookie").is_none());
    let reply = http()
        .post(format!("{base}/account/session"))
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    let reply = sign_in(base, "alice", "wrong").await;
    assert!(reply.headers().get("set-cookie").is_none());
    assert_refused(reply, 401).await;

    // The same limiter as Basic: 20 failures a minute per user and address, then 429,
    // even with the right password.
    for _ in 0..20 {
        assert_eq!(sign_in(base, "bob", "wrong").await.status(), 401);
    }
    let reply = sign_in(base, "bob", "bob-password").await;
    assert_eq!(reply.status(), 429);
    assert!(reply.headers().contains_key("retry-after"));
    let reply = http()
        .get(format!("{base}/users/me/authorizations"))
        .basic_auth("bob", Some("bob-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 429, "Basic shares the budget");
}

#[tokio::test]
async fn the_page_and_its_api_carry_strict_headers() {
    let dir = TempDir::new("account-headers");
    let demo = start_demo(None, &dir);
    let base = demo.url.as_str();
    let session = Session::start(base).await;

    let page = http().get(format!("{base}/account")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let headers = page.headers().clone();
    let html = page.text().await.unwrap();
    // No inline script or style: the policy forbids them and the page needs none.
    assert!(!html.contains("<style"), "inline style element");
    assert!(!html.contains(" style="), "inline style attribute");
    assert!(!has_event_handler(&html), "inline event handler");
    for script in html.split("<script").skip(1) {
        assert!(
            script.trim_start().starts_with("src=\"/account/app.js\""),
            "inline script: {script}"
        );
    }
    assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
    assert!(html.contains("aria-live=\"polite\""));

    let mut answers = vec![("/account".to_owned(), headers)];
    for path in ["/account/app.js", "/account/app.css"] {
        let reply = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(reply.status(), 200, "{path}");
        answers.push((path.to_owned(), reply.headers().clone()));
    }
    for (method, path) in [
        (reqwest::Method::GET, "/users/me/authorizations"),
        (reqwest::Method::GET, "/account/session"),
        (reqwest::Method::DELETE, "/users/me/authorizations/nobody"),
    ] {
        let reply = session
            .request(method, path)
            .header("x-csrf-token", &session.csrf)
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success(), "{path}: {}", reply.status());
        answers.push((path.to_owned(), reply.headers().clone()));
    }
    for (path, headers) in answers {
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
    }

    let reply = http()
        .put(format!("{base}/account/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 405);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn the_log_never_holds_a_password_session_id_or_csrf_token() {
    let mut command = Command::new(common::demo_server_binary());
    command
        .args(["--plain", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "trace");
    let server = common::LoggedServer::start(command).await;
    let base = format!("http://{}", server.addr);

    assert_eq!(
        sign_in(&base, "alice", "not-alices-password")
            .await
            .status(),
        401
    );
    let session = Session::start(&base).await;
    let session_id = session
        .cookie
        .trim_start_matches("account_session=")
        .to_owned();
    for (method, path) in [
        (reqwest::Method::GET, "/account/session"),
        (reqwest::Method::GET, "/users/me/authorizations"),
        (reqwest::Method::DELETE, "/users/me/authorizations"),
        (reqwest::Method::DELETE, "/account/session"),
    ] {
        let reply = session
            .request(method, path)
            .header("x-csrf-token", &session.csrf)
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success(), "{path}: {}", reply.status());
    }

    let (status, log) = server.stop().await;
    assert!(status.success());
    assert!(
        log.contains("/account/session"),
        "the requests were logged: {log}"
    );
    for secret in [
        "alice-password",
        "not-alices-password",
        session_id.as_str(),
        session.csrf.as_str(),
    ] {
        assert!(!log.contains(secret), "the log holds {secret:?}");
    }
}
