//! A loopback proxy in front of PostgreSQL that counts round trips: each `Sync` of the
//! extended query protocol and each simple `Query` the clients send ends one exchange with
//! the server. Connections that `LISTEN` (the store's event relay) are not counted.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{tcp::OwnedReadHalf, tcp::OwnedWriteHalf, TcpListener, TcpStream},
};

#[derive(Default)]
struct Counted {
    round_trips: AtomicUsize,
    listens: AtomicBool,
}

pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    connections: Arc<Mutex<Vec<Arc<Counted>>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections: Arc<Mutex<Vec<Arc<Counted>>>> = Arc::default();
        let all = connections.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let counted = Arc::new(Counted::default());
                all.lock().unwrap().push(counted.clone());
                let (from_client, mut to_client) = client.into_split();
                let (mut from_server, to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                });
                tokio::spawn(frontend(from_client, to_server, counted));
            }
        });
        Proxy { addr, connections }
    }

    /// The round trips of every connection that does not listen, so far.
    pub(crate) fn round_trips(&self) -> usize {
        self.connections
            .lock()
            .unwrap()
            .iter()
            .filter(|c| !c.listens.load(Ordering::SeqCst))
            .map(|c| c.round_trips.load(Ordering::SeqCst))
            .sum()
    }
}

/// Forwards what the client sends, a message at a time, counting.
async fn frontend(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, counted: Arc<Counted>) {
    // Untyped messages until the startup message (an SSL or GSS request comes first).
    loop {
        let Ok(body) = untyped(&mut from, &mut to).await else {
            return;
        };
        if !matches!(body.get(..4), Some([4, 210, 22, 47] | [4, 210, 22, 48])) {
            break;
        }
    }
    loop {
        let mut head = [0u8; 5];
        if from.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0; len.saturating_sub(4)];
        if from.read_exact(&mut body).await.is_err() {
            return;
        }
        match head[0] {
            b'S' => {
                counted.round_trips.fetch_add(1, Ordering::SeqCst);
            }
            b'Q' => {
                if String::from_utf8_lossy(&body).contains("LISTEN") {
                    counted.listens.store(true, Ordering::SeqCst);
                }
                counted.round_trips.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        if to.write_all(&head).await.is_err() || to.write_all(&body).await.is_err() {
            return;
        }
    }
}

async fn untyped(from: &mut OwnedReadHalf, to: &mut OwnedWriteHalf) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len).await?;
    let mut body = vec![0; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
    from.read_exact(&mut body).await?;
    to.write_all(&len).await?;
    to.write_all(&body).await?;
    Ok(body)
}
