//! A TCP-over-smux tunnel: many TCP connections forwarded over one multiplexed connection.
//!
//! ```text
//! # forward 127.0.0.1:7000 -> (one smux connection to 127.0.0.1:9000) -> 127.0.0.1:8080
//! cargo run --example tunnel -- server --listen 127.0.0.1:9000 --to 127.0.0.1:8080
//! cargo run --example tunnel -- client --listen 127.0.0.1:7000 --server 127.0.0.1:9000
//! ```
//!
//! Each connection to the client's `--listen` address becomes one stream; the server opens a
//! connection to `--to` for each stream. Ctrl-C closes the sessions and exits.

mod tunnel;

use std::process::ExitCode;

use tokio::net::TcpListener;

const USAGE: &str = "usage:
  tunnel server --listen ADDR --to ADDR       accept tunnels on ADDR, forward streams to --to
  tunnel client --listen ADDR --server ADDR   forward connections to ADDR through --server";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((mode, listen, target)) = parse(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tunnel {mode}: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("tunnel {mode}: shutting down");
    };
    let result = if mode == "server" {
        eprintln!("tunnel server: listening on {listen}, forwarding streams to {target}");
        tunnel::server(listener, target, shutdown).await
    } else {
        eprintln!("tunnel client: listening on {listen}, tunnelling through {target}");
        tunnel::client(listener, target, shutdown).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tunnel {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `(mode, listen, target)` from `server --listen A --to B` or `client --listen A --server B`.
fn parse(args: &[String]) -> Option<(&'static str, String, String)> {
    let (mode, target_flag) = match args.first()?.as_str() {
        "server" => ("server", "--to"),
        "client" => ("client", "--server"),
        _ => return None,
    };
    let (mut listen, mut target) = (None, None);
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next()?.clone();
        match flag.as_str() {
            "--listen" => listen = Some(value),
            f if f == target_flag => target = Some(value),
            _ => return None,
        }
    }
    Some((mode, listen?, target?))
}
