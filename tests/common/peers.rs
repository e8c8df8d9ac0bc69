//! The original Go implementation as a peer (shared/peers/README.md): finds its programs through
//! `SMUX_PEERS` (or in `../shared/peers`), starts their servers and clients on loopback, and kills
//! every process it started.
//!
//! Each process is owned by a [`Process`], which kills it (by its own `Child` handle) and reaps it
//! when dropped, so a failing or panicking test never leaves one behind. Every wait is bounded.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smol::Timer;

use super::within;

/// The environment variable naming the folder of the programs (default: `../shared/peers`).
/// When it is set, the interop tests must run: a missing program is a failure.
pub const ENV: &str = "SMUX_PEERS";
/// Set by CI services (and by `.ci/run` through [`ENV`]): where it is set, the interop tests must
/// run too.
pub const CI: &str = "CI";

/// Says, in one line on the standard error (not captured by the test harness), that `test` did
/// not run and how to run it.
fn skipped(test: &str, dir: &Path) {
    use std::io::Write;
    let line = format!(
        "SKIPPED interop test {test}: the Go peer programs are not in {} (run it with \
         {ENV}=<folder of the programs of shared/peers>; {ENV} or {CI} set makes them mandatory)\n",
        dir.display()
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// A version of the original, as a program of shared/peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Original {
    /// Commit 0519644, the version the founding document describes.
    V0519644,
    /// Commit 77536ae, the newest: PIN every 10 s, first stream id 0.
    V77536ae,
    /// 77536ae with PIN every 200 ms, a session closed after 2 s without a PIN.
    V77536aeFastping,
    /// xtaci/smux v1.5.57, the newest (half-close; `XTACI_VERSION=2` for protocol version 2).
    Xtaci1557,
    /// xtaci/smux v1.5.24, the version gost v2 pins (a FIN ends the stream).
    Xtaci1524,
}

impl Original {
    /// Every program a test may need.
    pub const ALL: [Original; 5] = [
        Original::V0519644,
        Original::V77536ae,
        Original::V77536aeFastping,
        Original::Xtaci1557,
        Original::Xtaci1524,
    ];

    /// Both versions of xtaci/smux.
    pub const XTACI: [Original; 2] = [Original::Xtaci1557, Original::Xtaci1524];

    /// The program's file name.
    pub fn program(self) -> &'static str {
        match self {
            Original::V0519644 => "original-0519644",
            Original::V77536ae => "original-77536ae",
            Original::V77536aeFastping => "original-77536ae-fastping",
            Original::Xtaci1557 => "xtaci-v1.5.57",
            Original::Xtaci1524 => "xtaci-v1.5.24",
        }
    }
}

/// The folder of the programs.
#[derive(Debug, Clone)]
pub struct Peers {
    dir: PathBuf,
}

impl Peers {
    /// The programs' folder: `SMUX_PEERS`, or else the project's sibling `shared/peers` (where
    /// the project keeps them).
    ///
    /// Where the run must not skip (`SMUX_PEERS` is set, or `CI` is, or the default folder exists
    /// but lacks a program) a missing program fails the test, saying where it looked. On a clone
    /// without the default folder and with neither variable set (a user's machine, a crates.io
    /// download) the test writes one line saying that it was skipped and how to run it, and this
    /// returns `None`. That line goes straight to the standard error, past the test harness's
    /// capture, so that `cargo test` shows it.
    pub fn find(test: &str) -> Option<Peers> {
        let named = std::env::var_os(ENV);
        let must_run = named.is_some() || std::env::var_os(CI).is_some();
        let dir = named
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/peers"));
        let missing: Vec<&str> = Original::ALL
            .iter()
            .map(|o| o.program())
            .filter(|p| !dir.join(p).is_file())
            .collect();
        if missing.is_empty() {
            return Some(Peers { dir });
        }
        if !must_run && !dir.exists() {
            skipped(test, &dir);
            return None;
        }
        panic!(
            "interop test {test}: {} lacks {}: {ENV} must point at a folder with \
             original-0519644, original-77536ae, original-77536ae-fastping, xtaci-v1.5.57 and \
             xtaci-v1.5.24, the programs built from the Go packages that the project ships in shared/peers (see its README.md)",
            dir.display(),
            missing.join(", ")
        );
    }

    /// The path of `version`'s program.
    pub fn path(&self, version: Original) -> PathBuf {
        self.dir.join(version.program())
    }

    /// Starts `version`'s `command` (`echo-server` or `sink-server`) on a free loopback port and
    /// waits (bounded) until it accepts connections.
    pub async fn server(&self, version: Original, command: &str) -> GoServer {
        self.server_env(version, command, &[]).await
    }

    /// As [`Peers::server`], with environment variables (`XTACI_VERSION=2`, ...).
    pub async fn server_env(
        &self,
        version: Original,
        command: &str,
        env: &[(&str, &str)],
    ) -> GoServer {
        let mut last = String::new();
        // A port found free may be taken before the program binds it: then it exits, and we try
        // another one.
        for _ in 0..3 {
            let addr = free_port();
            let mut process = Process::start(
                &self.path(version),
                &[command, &addr.to_string()],
                env,
                false,
            );
            match wait_listening(&mut process, addr).await {
                Ok(()) => return GoServer { process, addr },
                Err(e) => last = e,
            }
        }
        panic!("{} {command} did not start: {last}", version.program())
    }

    /// Runs `version`'s client `args` (with `HARNESS_TIMEOUT=harness_secs`) to its end, waiting
    /// at most `harness_secs` + 15 s; panics unless it exits 0, adding `context()` (what our side
    /// saw) to the message. Returns its result line (the first line of its standard output), after
    /// printing it.
    pub async fn client(
        &self,
        version: Original,
        args: &[&str],
        harness_secs: u64,
        context: impl Fn() -> String,
    ) -> String {
        self.client_env(version, args, &[], harness_secs, context)
            .await
    }

    /// As [`Peers::client`], with environment variables (`XTACI_VERSION=2`, ...).
    pub async fn client_env(
        &self,
        version: Original,
        args: &[&str],
        env: &[(&str, &str)],
        harness_secs: u64,
        context: impl Fn() -> String,
    ) -> String {
        let out = self
            .client_output_env(version, args, env, harness_secs)
            .await;
        let line = out.stdout.lines().next().unwrap_or("").trim().to_string();
        eprintln!("{} {}: {line}", version.program(), args.join(" "));
        assert!(
            out.status.success(),
            "{} {} failed ({}): stdout {:?}, stderr {:?}; {}",
            version.program(),
            args.join(" "),
            out.status,
            out.stdout.trim(),
            tail(&out.stderr, 3000),
            context(),
        );
        line
    }

    /// Runs a client as [`Peers::client`] does, but returns whatever it did.
    pub async fn client_output(
        &self,
        version: Original,
        args: &[&str],
        harness_secs: u64,
    ) -> Output {
        self.client_output_env(version, args, &[], harness_secs)
            .await
    }

    /// As [`Peers::client_output`], with environment variables.
    pub async fn client_output_env(
        &self,
        version: Original,
        args: &[&str],
        env: &[(&str, &str)],
        harness_secs: u64,
    ) -> Output {
        let timeout = harness_secs.to_string();
        let mut vars = vec![("HARNESS_TIMEOUT", timeout.as_str())];
        vars.extend_from_slice(env);
        let mut process = Process::start(&self.path(version), args, &vars, true);
        let what = format!("{} {} to exit", version.program(), args.join(" "));
        let limit = Duration::from_secs(harness_secs + 15);
        let status = within(limit, &what, process.exit()).await;
        process.output(status)
    }
}

/// What a finished client did.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// The last `max` characters of `s` (error output of 256 goroutines can be long).
fn tail(s: &str, max: usize) -> &str {
    let s = s.trim();
    match s.char_indices().rev().nth(max) {
        Some((i, _)) => &s[i..],
        None => s,
    }
}

/// A loopback address with a port that was free a moment ago.
///
/// Never the same port twice in one test binary: two tests starting servers at once could
/// otherwise both be given one port, and the one whose program failed to bind it would take the
/// other's server for its own (and lose it when that test ends and kills it).
pub fn free_port() -> SocketAddr {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = l.local_addr().expect("local addr");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&addr.port()) {
            given.push(addr.port());
            return addr;
        }
    }
}

/// Waits until `process` accepts connections at `addr` (at most 10 s), or it exits.
async fn wait_listening(process: &mut Process, addr: SocketAddr) -> Result<(), String> {
    let start = Instant::now();
    let exited = |process: &mut Process| {
        let status = process.try_exit()?;
        let out = process.output(status);
        Some(format!(
            "exited ({}): {}",
            out.status,
            tail(&out.stderr, 2000)
        ))
    };
    loop {
        if let Some(e) = exited(process) {
            return Err(e);
        }
        let attempt = smol::future::or(
            async { Some(smol::net::TcpStream::connect(addr).await) },
            async {
                Timer::after(Duration::from_millis(500)).await;
                None
            },
        )
        .await;
        if let Some(Ok(conn)) = attempt {
            drop(conn);
            // Something listens there; a program that could not bind the port exits at once, so
            // make sure ours is still running (the listener could be another test's).
            Timer::after(Duration::from_millis(50)).await;
            return exited(process).map_or(Ok(()), Err);
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err(format!("not listening on {addr} after 10 s"));
        }
        Timer::after(Duration::from_millis(20)).await;
    }
}

/// A Go server running on loopback; killed when dropped.
pub struct GoServer {
    process: Process,
    pub addr: SocketAddr,
}

impl GoServer {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Panics if the server has exited (it runs until killed).
    pub fn assert_running(&mut self) {
        if let Some(status) = self.process.try_exit() {
            let out = self.process.output(status);
            panic!(
                "the Go server {} exited ({}): {}",
                self.process.name,
                out.status,
                tail(&out.stderr, 2000)
            );
        }
    }
}

/// A child process, killed (SIGKILL) and reaped when dropped. Its standard output (if piped) and
/// standard error are drained by threads, so it never blocks on a full pipe.
pub struct Process {
    name: String,
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

fn drain(r: Option<impl Read + Send + 'static>) -> Option<JoinHandle<String>> {
    r.map(|mut r| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        })
    })
}

impl Process {
    /// Starts `program args` with `env` added; standard output is piped if `pipe_stdout`, else
    /// discarded; standard error is always captured.
    pub fn start(program: &Path, args: &[&str], env: &[(&str, &str)], pipe_stdout: bool) -> Self {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(if pipe_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        let name = format!(
            "{} {}",
            program.file_name().unwrap_or_default().to_string_lossy(),
            args.join(" ")
        );
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Process {
            name,
            child,
            stdout,
            stderr,
        }
    }

    /// Its exit status, if it has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.name))
    }

    /// Waits until it exits (unbounded: wrap it in [`within`]).
    pub async fn exit(&mut self) -> ExitStatus {
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            Timer::after(Duration::from_millis(10)).await;
        }
    }

    /// What it wrote, once it has exited with `status`.
    pub fn output(&mut self, status: ExitStatus) -> Output {
        let join = |h: Option<JoinHandle<String>>| {
            h.map_or_else(String::new, |h| h.join().unwrap_or_default())
        };
        Output {
            status,
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Kill by our own handle (an error only means it has exited already), then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
