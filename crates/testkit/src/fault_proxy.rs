//! A TCP proxy on loopback that injects network faults between a client and a real server
//! (PostgreSQL, NATS): the userspace stand-in for a cable cut, since this machine has no
//! `netem` and tests run without root.
//!
//! Point the client at [`FaultProxy::addr`] instead of the server and switch the
//! [`ProxyMode`] while it runs. What it cannot show: the server's own TCP keepalive (the
//! proxy's kernel answers the server's probes), so a server-side dead-peer check still has to
//! be tested by its settings.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic, from the moment it is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward both ways.
    Pass,
    /// Forward both ways, each chunk this much later (order kept).
    Delay(Duration),
    /// Forward nothing either way; connections, open and new, stay open and silent. Bytes
    /// already sent are held, not lost: back in [`ProxyMode::Pass`] they arrive.
    Blackhole,
    /// New connections are reset at once; open ones keep flowing (a server that stopped
    /// listening).
    Refuse,
    /// Every connection, open or new, is reset (RST): the peer is gone and its host says so.
    Reset,
}

/// A proxy from a free loopback port to `upstream`; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0`, forwarding to `upstream` (e.g. `127.0.0.1:5432`).
    ///
    /// # Panics
    /// When no loopback port can be bound: the test cannot run without one.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("fault proxy: cannot bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fault proxy: no local address: {e}"));
        let (mode, watching) = watch::channel(ProxyMode::Pass);
        let accept = tokio::spawn(accept_loop(listener, upstream, watching));
        Self { addr, mode, accept }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Switches to `mode`.
    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    /// The mode in force.
    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Connections end with their tasks once the mode channel is gone.
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<ProxyMode>,
) {
    while let Ok((client, _)) = listener.accept().await {
        if matches!(*mode.borrow(), ProxyMode::Refuse | ProxyMode::Reset) {
            reset(client);
            continue;
        }
        let mode = mode.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                reset(client);
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            connection(client, server, mode).await;
        });
    }
}

/// Pumps both directions until both sides have closed, or resets both when the mode says so.
async fn connection(client: TcpStream, server: TcpStream, mode: watch::Receiver<ProxyMode>) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = tokio::spawn(pump(client_read, server_write, mode.clone()));
    let down = tokio::spawn(pump(server_read, client_write, mode));
    let (up, down) = tokio::join!(up, down);
    if let (Ok(Some((client_read, server_write))), Ok(Some((server_read, client_write)))) =
        (up, down)
    {
        if let Ok(client) = client_read.reunite(client_write) {
            reset(client);
        }
        if let Ok(server) = server_read.reunite(server_write) {
            reset(server);
        }
    }
}

type Halves = (OwnedReadHalf, OwnedWriteHalf);

/// What to do with the next chunk (or the close) once the mode lets it through.
enum Verdict {
    Forward,
    Reset,
    Gone,
}

/// Waits while the mode holds traffic ([`ProxyMode::Blackhole`]), sleeps a delay, and says
/// whether to forward.
async fn pass(mode: &mut watch::Receiver<ProxyMode>) -> Verdict {
    loop {
        let current = *mode.borrow_and_update();
        match current {
            ProxyMode::Pass | ProxyMode::Refuse => return Verdict::Forward,
            ProxyMode::Delay(delay) => {
                tokio::time::sleep(delay).await;
                return Verdict::Forward;
            }
            ProxyMode::Reset => return Verdict::Reset,
            ProxyMode::Blackhole => {
                if mode.changed().await.is_err() {
                    return Verdict::Gone;
                }
            }
        }
    }
}

/// Copies `from` into `to`, chunk by chunk, as the mode allows; a close is passed on like
/// data (a blackhole holds it too, as a cut cable would). `None` when done; the halves when
/// the mode turned to [`ProxyMode::Reset`], for the caller to close both sockets with RST.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
) -> Option<Halves> {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            reset = mode.wait_for(|m| *m == ProxyMode::Reset) => {
                return reset.is_ok().then_some((from, to));
            }
        };
        let n = read.unwrap_or(0);
        match pass(&mut mode).await {
            Verdict::Forward => {}
            Verdict::Reset => return Some((from, to)),
            Verdict::Gone => return None,
        }
        if n == 0 || to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
    None
}

/// Closes `stream` with RST instead of FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}
