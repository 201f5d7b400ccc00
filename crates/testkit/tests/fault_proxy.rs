//! The fault proxy in each mode, in front of a real PostgreSQL and a loopback echo server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use deskie_testkit::{FaultProxy, ProxyMode};
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on a free loopback port.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0_u8; 1024];
                while let Ok(n) = socket.read(&mut buffer).await {
                    if n == 0 || socket.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn round_trip(socket: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
    socket.write_all(text).await?;
    let mut back = vec![0_u8; text.len()];
    socket.read_exact(&mut back).await?;
    Ok(back)
}

/// The connection was closed (reset or EOF) rather than answered.
async fn closed(socket: &mut TcpStream) -> bool {
    let mut buffer = [0_u8; 16];
    let _ = socket.write_all(b"x").await;
    match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buffer)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test]
async fn passes_traffic_to_a_real_postgresql() {
    let proxy = FaultProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port());
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .expect("query");
    assert_eq!(one, 1);
}

#[tokio::test]
async fn a_delay_holds_each_chunk_back_and_keeps_it() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut socket = TcpStream::connect(proxy.addr()).await.expect("connect");
    proxy.set(ProxyMode::Delay(Duration::from_millis(200)));
    let started = Instant::now();
    let back = round_trip(&mut socket, b"hello").await.expect("echo");
    assert_eq!(back, b"hello");
    // Out and back: delayed once each way (a lower bound, never flaky).
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn a_blackhole_holds_bytes_until_traffic_passes_again() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut socket = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(round_trip(&mut socket, b"a").await.expect("echo"), b"a");
    proxy.set(ProxyMode::Blackhole);
    socket.write_all(b"held").await.expect("write");
    let mut back = [0_u8; 4];
    let silent = tokio::time::timeout(Duration::from_millis(300), socket.read_exact(&mut back));
    assert!(
        silent.await.is_err(),
        "nothing may come back through a blackhole"
    );
    // A new connection is accepted but just as silent.
    let mut second = TcpStream::connect(proxy.addr()).await.expect("connect");
    second.write_all(b"2").await.expect("write");
    proxy.set(ProxyMode::Pass);
    socket.read_exact(&mut back).await.expect("released");
    assert_eq!(&back, b"held");
    let mut one = [0_u8; 1];
    second.read_exact(&mut one).await.expect("released");
    assert_eq!(&one, b"2");
}

#[tokio::test]
async fn refuse_resets_new_connections_and_keeps_open_ones() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut open = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(round_trip(&mut open, b"a").await.expect("echo"), b"a");
    proxy.set(ProxyMode::Refuse);
    let mut refused = TcpStream::connect(proxy.addr()).await.expect("tcp accept");
    assert!(closed(&mut refused).await, "a new connection must be reset");
    assert_eq!(round_trip(&mut open, b"b").await.expect("echo"), b"b");
}

#[tokio::test]
async fn reset_closes_open_connections_and_new_ones() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut open = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(round_trip(&mut open, b"a").await.expect("echo"), b"a");
    proxy.set(ProxyMode::Reset);
    let mut buffer = [0_u8; 4];
    let read = tokio::time::timeout(Duration::from_secs(10), open.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "an open connection must be closed: {read:?}"
    );
    let mut new = TcpStream::connect(proxy.addr()).await.expect("tcp accept");
    assert!(closed(&mut new).await, "a new connection must be reset");
    proxy.set(ProxyMode::Pass);
    let mut again = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(round_trip(&mut again, b"c").await.expect("echo"), b"c");
}
