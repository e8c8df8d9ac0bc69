//! A TCP-over-smux tunnel: many TCP connections forwarded over a few multiplexed connections
//! (one by default; `--connections N` for a pool of N), optionally TLS.
//!
//! ```text
//! # forward 127.0.0.1:7000 -> (one smux connection to 127.0.0.1:9000) -> 127.0.0.1:8080
//! cargo run --example tunnel -- server --listen 127.0.0.1:9000 --to 127.0.0.1:8080
//! cargo run --example tunnel -- client --listen 127.0.0.1:7000 --server 127.0.0.1:9000
//!
//! # the same over 4 connections, the streams spread over them by load
//! cargo run --example tunnel -- client --listen 127.0.0.1:7000 --server 127.0.0.1:9000 \
//!     --connections 4
//!
//! # the same over TLS, with a self-signed certificate for a quick try
//! cargo run --example tunnel -- gen-cert --out-dir /tmp/tunnel-tls
//! cargo run --example tunnel -- server --listen 127.0.0.1:9000 --to 127.0.0.1:8080 \
//!     --tls-cert /tmp/tunnel-tls/cert.pem --tls-key /tmp/tunnel-tls/key.pem
//! cargo run --example tunnel -- client --listen 127.0.0.1:7000 --server 127.0.0.1:9000 \
//!     --tls-ca /tmp/tunnel-tls/cert.pem
//! ```
//!
//! Each connection to the client's `--listen` address becomes one stream; the server opens a
//! connection to `--to` for each stream. Ctrl-C closes the sessions and exits (the client lets
//! open connections finish for up to 5 s first).
//!
//! The client fails at once if the server cannot be reached when it starts. Once running, it
//! replaces a session it loses (the server restarted, the network failed, the server stopped
//! answering its keepalive), retrying with backoff; local connections made meanwhile wait up to
//! 10 s for a session.
//!
//! With `--tls-ca` the client trusts only the certificates in that file, and expects the server's
//! certificate to be valid for `--tls-name` (by default the host of `--server`). `gen-cert` makes
//! a certificate valid for `localhost`, `127.0.0.1` and `::1` unless given `--name`s.

// `server` and `client` (the default options) are for the tests; the command line passes its own.
#[allow(dead_code)]
mod tunnel;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpListener;

const USAGE: &str = "usage:
  tunnel server --listen ADDR --to ADDR [--tls-cert FILE --tls-key FILE] [--keepalive SECS]
                [--protocol yddeng|xtaci1|xtaci2|auto]
      accept tunnels on ADDR (over TLS with the PEM certificate chain and key given),
      forward their streams to --to
  tunnel client --listen ADDR --server ADDR [--connections N] [--tls-ca FILE [--tls-name NAME]]
                [--keepalive SECS] [--protocol yddeng|xtaci1|xtaci2]
      forward connections to ADDR through --server over N connections (default 1), reconnecting
      when one is lost (over TLS, trusting the PEM certificates in --tls-ca, expecting the
      server's to be valid for --tls-name: by default --server's host)
  --keepalive SECS: probe a silent peer every SECS seconds (default 10; 0 turns it off); a session
      whose peer stopped answering ends 2 to 2.25 times SECS after the last word from it, and its
      connections are reset
  --protocol: the smux spoken (default yddeng; xtaci1 and xtaci2 are xtaci/smux's versions 1 and
      2, the wire of gost, sing-box and kcptun); auto, on the server, serves clients of all three
  tunnel gen-cert --out-dir DIR [--name NAME]...
      write a self-signed certificate DIR/cert.pem and its key DIR/key.pem, valid for each
      --name (by default localhost, 127.0.0.1 and ::1)";

/// What the command line asks for.
enum Command {
    Server {
        listen: String,
        to: String,
        tls: Option<(PathBuf, PathBuf)>,
        options: tunnel::Options,
    },
    Client {
        listen: String,
        server: String,
        connections: usize,
        tls: Option<(PathBuf, Option<String>)>,
        options: tunnel::Options,
    },
    GenCert {
        dir: PathBuf,
        names: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(c) => c,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("tunnel: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (mode, result) = match command {
        Command::GenCert { dir, names } => ("gen-cert", gen_cert(&dir, &names)),
        Command::Server {
            listen,
            to,
            tls,
            options,
        } => ("server", server(listen, to, tls, options).await),
        Command::Client {
            listen,
            server,
            connections,
            tls,
            options,
        } => (
            "client",
            client(listen, server, connections, tls, options).await,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tunnel {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn server(
    listen: String,
    to: String,
    tls: Option<(PathBuf, PathBuf)>,
    options: tunnel::Options,
) -> std::io::Result<()> {
    let tls = match tls {
        Some((cert, key)) => Some(tunnel::load_server_tls(&cert, &key)?),
        None => None,
    };
    let listener = bind(&listen).await?;
    let over = if tls.is_some() { " (TLS)" } else { "" };
    eprintln!(
        "tunnel server: listening on {listen}{over}, forwarding streams to {to}{}",
        keepalive(&options)
    );
    tunnel::server_with(listener, to, tls, options, shutdown("server")).await
}

async fn client(
    listen: String,
    server: String,
    connections: usize,
    tls: Option<(PathBuf, Option<String>)>,
    options: tunnel::Options,
) -> std::io::Result<()> {
    let tls = match tls {
        Some((ca, name)) => {
            let name = name.unwrap_or_else(|| tunnel::host_of(&server).to_string());
            Some(tunnel::ClientTls::load(&ca, &name)?)
        }
        None => None,
    };
    let listener = bind(&listen).await?;
    let over = if tls.is_some() { " (TLS)" } else { "" };
    let conns = if connections == 1 { "" } else { "s" };
    eprintln!(
        "tunnel client: listening on {listen}, tunnelling through {server}{over} over \
         {connections} connection{conns}{}",
        keepalive(&options)
    );
    tunnel::client_with(
        listener,
        server,
        tls,
        connections,
        options,
        shutdown("client"),
    )
    .await
}

/// The keepalive and the protocol, as the start-up line says them.
fn keepalive(options: &tunnel::Options) -> String {
    let protocol = match options.protocol() {
        ysmux::Protocol::Yddeng => "yddeng's smux",
        ysmux::Protocol::Xtaci1 => "xtaci/smux v1",
        ysmux::Protocol::Xtaci2 => "xtaci/smux v2",
        _ => "every smux",
    };
    match options.keepalive() {
        Some(every) => format!(", {protocol}, keepalive every {every:?}"),
        None => format!(", {protocol}, no keepalive"),
    }
}

fn gen_cert(dir: &std::path::Path, names: &[String]) -> std::io::Result<()> {
    let (cert, key) = tunnel::generate_cert(dir, names)?;
    let (cert, key) = (cert.display(), key.display());
    eprintln!(
        "tunnel gen-cert: wrote {cert} and {key}, valid for {}",
        names.join(", ")
    );
    eprintln!("  tunnel server ... --tls-cert {cert} --tls-key {key}");
    eprintln!("  tunnel client ... --tls-ca {cert}");
    Ok(())
}

async fn bind(listen: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))
}

async fn shutdown(mode: &str) {
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("tunnel {mode}: shutting down");
}

/// The command from `server ...`, `client ...` or `gen-cert ...`; an error says what is wrong
/// (empty: just show the usage).
fn parse(args: &[String]) -> Result<Command, String> {
    let mode = args.first().ok_or_else(String::new)?.as_str();
    if matches!(mode, "-h" | "--help" | "help") {
        return Err(String::new());
    }
    if !matches!(mode, "server" | "client" | "gen-cert") {
        return Err(format!("unknown command {mode:?}"));
    }
    let mut flags: Vec<(&str, String)> = Vec::new();
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let allowed: &[&str] = match mode {
            "server" => &[
                "--listen",
                "--to",
                "--tls-cert",
                "--tls-key",
                "--keepalive",
                "--protocol",
            ],
            "client" => &[
                "--listen",
                "--server",
                "--connections",
                "--tls-ca",
                "--tls-name",
                "--keepalive",
                "--protocol",
            ],
            _ => &["--out-dir", "--name"],
        };
        let Some(&flag) = allowed.iter().find(|&&f| f == flag) else {
            return Err(format!("tunnel {mode} takes no {flag:?}"));
        };
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag != "--name" && flags.iter().any(|(f, _)| *f == flag) {
            return Err(format!("{flag} given twice"));
        }
        flags.push((flag, value.clone()));
    }
    let get = |flag: &str| {
        flags
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.clone())
    };
    let need = |flag: &str| get(flag).ok_or_else(|| format!("tunnel {mode} needs {flag}"));
    let options = match get("--keepalive") {
        None => tunnel::Options::default(),
        Some(secs) => match secs.parse::<f64>() {
            Ok(0.0) => tunnel::Options::default().with_keepalive(None),
            Ok(s) if (0.001..=86_400.0).contains(&s) => {
                tunnel::Options::default().with_keepalive(Some(Duration::from_secs_f64(s)))
            }
            _ => {
                return Err(format!(
                    "--keepalive must be 0 (off) or from 0.001 to 86400 seconds, not {secs:?}"
                ))
            }
        },
    };
    let options = match get("--protocol").as_deref() {
        None | Some("yddeng") => options,
        Some("xtaci1") => options.with_protocol(ysmux::Protocol::Xtaci1),
        Some("xtaci2") => options.with_protocol(ysmux::Protocol::Xtaci2),
        Some("auto") if mode == "server" => options.with_protocol(ysmux::Protocol::Detect),
        Some(other) => {
            return Err(format!(
                "--protocol must be yddeng, xtaci1 or xtaci2 (or auto on the server), not {other:?}"
            ))
        }
    };
    Ok(match mode {
        "server" => Command::Server {
            listen: need("--listen")?,
            to: need("--to")?,
            tls: match (get("--tls-cert"), get("--tls-key")) {
                (Some(cert), Some(key)) => Some((cert.into(), key.into())),
                (None, None) => None,
                _ => return Err("--tls-cert and --tls-key go together".into()),
            },
            options,
        },
        "client" => Command::Client {
            listen: need("--listen")?,
            server: need("--server")?,
            connections: match get("--connections") {
                None => 1,
                Some(n) => match n.parse::<usize>() {
                    Ok(n) if (1..=64).contains(&n) => n,
                    _ => return Err(format!("--connections must be from 1 to 64, not {n:?}")),
                },
            },
            tls: match (get("--tls-ca"), get("--tls-name")) {
                (Some(ca), name) => Some((ca.into(), name)),
                (None, None) => None,
                (None, Some(_)) => return Err("--tls-name needs --tls-ca".into()),
            },
            options,
        },
        _ => {
            let mut names: Vec<String> = flags
                .iter()
                .filter(|(f, _)| *f == "--name")
                .map(|(_, v)| v.clone())
                .collect();
            if names.is_empty() {
                names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
            }
            Command::GenCert {
                dir: need("--out-dir")?.into(),
                names,
            }
        }
    })
}
