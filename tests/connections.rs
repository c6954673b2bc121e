//! Connection hygiene over real sockets: idle connections of every kind are closed, and a
//! server short of descriptors, flooded with idle connections, still answers a new client
//! without flooding its log.
//!
//! Every wait is for the server's own doing (a connection closed, an answer); the bounds
//! only stop a test that would otherwise hang.

mod common;

use std::{
    convert::Infallible,
    net::SocketAddr,
    process::Command,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tower::service_fn;
use tower_oauth_revoke::serve::Server;

const IDLE: Duration = Duration::from_secs(1);
/// Only a guard against hanging: a closed connection is seen as soon as it closes.
const BOUND: Duration = Duration::from_secs(20);

async fn hello_server(idle: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    });
    tokio::spawn(
        Server::new()
            .idle_timeout(idle)
            .serve(listener, service, std::future::pending()),
    );
    addr
}

/// Reads until the server closes the connection; returns how long that took.
async fn closed_by_server(mut stream: TcpStream, what: &str) -> Duration {
    let start = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(BOUND, stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "{what}: still open after {BOUND:?}");
    start.elapsed()
}

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const H2_EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

#[tokio::test]
async fn idle_connections_of_every_kind_are_closed() {
    let addr = hello_server(IDLE).await;
    let mut kinds = Vec::new();

    // Nothing at all.
    kinds.push(("silent TCP", TcpStream::connect(addr).await.unwrap()));
    // Half an HTTP/2 preface.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(&H2_PREFACE[..10]).await.unwrap();
    kinds.push(("partial HTTP/2 preface", partial));
    // h2c: the whole preface and SETTINGS, then nothing.
    let mut h2c = TcpStream::connect(addr).await.unwrap();
    h2c.write_all(H2_PREFACE).await.unwrap();
    h2c.write_all(H2_EMPTY_SETTINGS).await.unwrap();
    kinds.push(("h2c after SETTINGS", h2c));
    // HTTP/1.1 keep-alive after one answered request.
    let mut keep_alive = TcpStream::connect(addr).await.unwrap();
    keep_alive
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 256];
    let n = keep_alive.read(&mut head).await.unwrap();
    assert!(
        head[..n].starts_with(b"HTTP/1.1 200"),
        "the request was served"
    );
    kinds.push(("HTTP/1.1 keep-alive", keep_alive));

    let mut closing = tokio::task::JoinSet::new();
    for (what, stream) in kinds {
        closing.spawn(async move { (what, closed_by_server(stream, what).await) });
    }
    while let Some(done) = closing.join_next().await {
        let (what, after) = done.unwrap();
        eprintln!("{what}: closed after {after:?}");
        // Not before the idle timeout: the close is the timeout's, not an error's.
        assert!(after >= IDLE / 2, "{what}: closed after only {after:?}");
    }
}

#[tokio::test]
async fn a_connection_with_a_request_in_flight_is_not_idle() {
    // A handler that takes three idle timeouts to answer.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
        tokio::time::sleep(IDLE * 3).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"late"))))
    });
    tokio::spawn(
        Server::new()
            .idle_timeout(IDLE)
            .serve(listener, service, std::future::pending()),
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "the slow request was answered"
    );
}

/// The demo server under `ulimit -n 512`, flooded with 600 silent connections (more than
/// it may hold) and a few of the other idle kinds: a new client is still answered, and the
/// log holds at most a few lines about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_short_of_descriptors_still_answers_a_new_client() {
    let binary = tokio::task::spawn_blocking(common::demo_server_binary)
        .await
        .unwrap();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 512 && exec \"$0\" --plain --listen 127.0.0.1:0")
        .arg(&binary)
        .env("RUST_LOG", "info");
    let server = common::LoggedServer::start(command).await;
    let addr = server.addr;

    let mut idle = Vec::new();
    for i in 0..600 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        match i % 10 {
            1 => stream.write_all(&H2_PREFACE[..10]).await.unwrap(),
            2 => {
                stream.write_all(H2_PREFACE).await.unwrap();
                stream.write_all(H2_EMPTY_SETTINGS).await.unwrap();
            }
            _ => {}
        }
        idle.push(stream);
    }

    let start = Instant::now();
    let request = Request::get(format!("http://{addr}/userinfo"))
        .header(
            "authorization",
            "Bearer f4839307-c5a3-3d09-8452-af56b0d70491",
        )
        .body(Full::default())
        .unwrap();
    let reply = tokio::time::timeout(BOUND, common::send(request))
        .await
        .expect("the new client was never answered");
    let waited = start.elapsed();
    eprintln!("a new client behind 600 idle connections answered after {waited:?}");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        waited < Duration::from_secs(10),
        "answered after {waited:?}, beyond the idle timeout"
    );

    // The flood is shed: the server closes the idle connections.
    let mut closing = tokio::task::JoinSet::new();
    for stream in idle {
        closing.spawn(closed_by_server(stream, "idle flood"));
    }
    while let Some(done) = closing.join_next().await {
        done.unwrap();
    }

    let (_, log) = server.stop().await;
    let accept_lines = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(
        accept_lines <= 5,
        "{accept_lines} lines about accept errors:\n{log}"
    );
    assert!(log.len() < 64 * 1024, "{} bytes of log", log.len());
}

/// A TLS connection that completes its handshake and then sends nothing is closed after
/// the idle timeout too; so is one that never finishes its handshake.
#[tokio::test]
async fn idle_tls_connections_are_closed() {
    // ring, as in the crate (deprecated in rustls 0.23.48 for want of post-quantum groups).
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server_config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    });
    tokio::spawn(Server::new().idle_timeout(IDLE).serve_with(
        listener,
        move |tcp| acceptor.accept(tcp),
        service,
        std::future::pending(),
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("the handshake completes");
    let start = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(BOUND, tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "an idle TLS connection stayed open");
    let after = start.elapsed();
    eprintln!("TLS after the handshake: closed after {after:?}");
    assert!(after >= IDLE / 2, "closed after only {after:?}");

    // A handshake never finished: a ClientHello never comes.
    let silent = TcpStream::connect(addr).await.unwrap();
    closed_by_server(silent, "TCP before the TLS handshake").await;
}
