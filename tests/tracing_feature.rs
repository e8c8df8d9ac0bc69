//! The `tracing` feature: a span per session and the events a subscriber expects (the session's
//! end and why, a refused stream, the memory budget hit, frames). Runs with
//! `cargo test --features tracing --test tracing_feature` (`.ci/run` does).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// What the test subscriber saw: each event's level, message and fields, and the spans' names.
#[derive(Default)]
struct Seen {
    events: Mutex<Vec<(Level, String)>>,
    spans: Mutex<Vec<String>>,
    next: AtomicU64,
}

struct Collect(Arc<Seen>);

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut t = Text(format!("{} ", span.metadata().name()));
        span.record(&mut t);
        self.0.spans.lock().unwrap().push(t.0);
        Id::from_u64(self.0.next.fetch_add(1, Ordering::SeqCst) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut t = Text(String::new());
        event.record(&mut t);
        self.0
            .events
            .lock()
            .unwrap()
            .push((*event.metadata().level(), t.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Seen {
    fn has(&self, level: Level, text: &str) -> bool {
        self.events
            .lock()
            .unwrap()
            .iter()
            .any(|(l, t)| *l == level && t.contains(text))
    }
}

#[test]
fn sessions_emit_spans_and_events() {
    let seen = Arc::new(Seen::default());
    let _guard = tracing::subscriber::set_default(Collect(seen.clone()));
    run(|ex| async move {
        // A session that refuses a stream (backlog 1) and then fails (an unknown command).
        let (a, b) = ysmux::pipe();
        let config = ysmux::Config::default().with_accept_backlog(1);
        let (server, driver) = ysmux::Session::server(a, config);
        let driver = ex.spawn(driver);
        let mut raw = RawPeer::new(b);
        raw.send(&[Frame::syn(1), Frame::syn(2)]).await;
        raw.expect(Frame::fin(2)).await;
        raw.send_bytes(&[0xEE, 0, 0, 0, 0, 0, 0]).await;
        assert!(wait("the driver", driver).await.is_err());
        drop(server);

        // A session that ends cleanly.
        let p = pair::<PipeTransport>(&ex).await;
        wait("close", p.client.close()).await.expect("close");
        wait("driver", p.client_driver).await.expect("clean");
    });
    assert!(seen
        .spans
        .lock()
        .unwrap()
        .iter()
        .any(|s| s.contains("ysmux_session") && s.contains("server")));
    assert!(seen.has(Level::DEBUG, "stream refused"));
    assert!(seen.has(Level::DEBUG, "frame in"));
    assert!(seen.has(Level::WARN, "session failed"));
    assert!(seen.has(Level::INFO, "session ended cleanly"));
}

#[test]
fn the_budget_hit_is_a_warning() {
    let seen = Arc::new(Seen::default());
    let _guard = tracing::subscriber::set_default(Collect(seen.clone()));
    run(|ex| async move {
        // A 64 KiB budget: one stream's first 64 KiB chunk (and its state) is already past it.
        let (a, b) = ysmux::pipe();
        let config = ysmux::Config::default().with_memory_budget(64 * 1024);
        let (server, driver) = ysmux::Session::server(a, config);
        ex.spawn(driver).detach();
        let mut raw = RawPeer::new(b);
        raw.send(&[Frame::syn(1), Frame::psh(1, &[1; 60_000])])
            .await;
        raw.expect(Frame::fin(1)).await;
        drop(server);
    });
    assert!(seen.has(Level::WARN, "memory budget exceeded"));
}
