//! Medians, the printed table, the markdown and CSV files, and the SVG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::peers::Impl;
use crate::rt::{NetKind, RtKind};

/// What one table row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Bytes per second with this many streams.
    Bulk(usize),
    RttP50,
    RttP99,
    /// Cycles per second.
    Churn,
    /// Busy stream with a stalled one beside it, bytes per second.
    StalledBusy,
    /// The same stream alone, bytes per second.
    StalledSolo,
    /// Bytes the stalled stream's writer got accepted.
    StalledCommitted,
    /// The busy stream's rate beside the stalled one, of its rate alone, in one session (the
    /// median of back-to-back pairs); shown as the ratio of the busy row, not as a row.
    StalledRatio,
    /// RSS growth per idle stream pair, bytes.
    Idle,
    /// Through the link emulator, raw TCP: the median round trip of a 1-byte ping, seconds.
    WanPing,
    /// Through the link emulator, bytes per second with this many streams.
    Wan(usize),
    /// Through the link emulator, one stream between the Go original and this crate, bytes per
    /// second; `sends`: the original is the sender.
    WanOriginal {
        sends: bool,
    },
    /// Through a link with a rate per connection, bytes per second over this many connections
    /// (raw) or sessions in a pool (smux).
    Pool(usize),
}

impl Metric {
    pub fn label(self) -> String {
        match self {
            Metric::Bulk(s) => format!("bulk {s} stream{} GiB/s", if s == 1 { "" } else { "s" }),
            Metric::RttP50 => "rtt p50 us".into(),
            Metric::RttP99 => "rtt p99 us".into(),
            Metric::Churn => "churn k cycles/s".into(),
            Metric::StalledBusy => "stalled: busy GiB/s".into(),
            Metric::StalledSolo => "stalled: solo GiB/s".into(),
            Metric::StalledCommitted => "stalled: unread KiB".into(),
            Metric::StalledRatio => "stalled: busy/solo".into(),
            Metric::Idle => "idle bytes/pair".into(),
            Metric::WanPing => "link self-check: ping ms".into(),
            Metric::Wan(s) => format!("wan {s} stream{} MiB/s", if s == 1 { "" } else { "s" }),
            Metric::WanOriginal { sends: true } => {
                format!("wan 1 stream from {} MiB/s", crate::original::VERSION)
            }
            Metric::WanOriginal { sends: false } => {
                format!("wan 1 stream to {} MiB/s", crate::original::VERSION)
            }
            Metric::Pool(n) => format!("pool of {n}, 8 streams MiB/s"),
        }
    }

    fn show(self, v: f64) -> String {
        match self {
            Metric::Bulk(_) | Metric::StalledBusy | Metric::StalledSolo => {
                format!("{:.2}", v / GIB)
            }
            Metric::RttP50 | Metric::RttP99 => format!("{:.1}", v * 1e6),
            Metric::Churn => format!("{:.1}", v / 1e3),
            Metric::StalledCommitted => format!("{:.0}", v / 1024.0),
            Metric::StalledRatio => format!("{v:.2}"),
            Metric::Idle => format!("{v:.0}"),
            Metric::WanPing => format!("{:.1}", v * 1e3),
            Metric::Wan(_) | Metric::WanOriginal { .. } | Metric::Pool(_) => {
                format!("{:.1}", v / MIB)
            }
        }
    }
}

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

pub type Key = (NetKind, RtKind, Metric, Impl);

#[derive(Default)]
pub struct Results {
    pub samples: BTreeMap<Key, Vec<f64>>,
    pub failures: BTreeMap<Key, String>,
    /// The load average when the bench started (/proc/loadavg).
    pub load_start: String,
    /// Which smux was measured (see `source_state`).
    pub source: Option<String>,
}

pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Results {
    pub fn add(&mut self, k: Key, v: f64) {
        self.samples.entry(k).or_default().push(v);
    }

    pub fn fail(&mut self, k: Key, why: String) {
        self.failures.entry(k).or_insert(why);
    }

    pub fn med(&self, k: &Key) -> Option<f64> {
        self.samples.get(k).and_then(|v| median(v))
    }

    /// The cell of `k`: its median, and the ratio the issue asks for.
    fn cell(&self, k: &Key) -> String {
        let (net, rt, m, imp) = *k;
        let Some(v) = self.med(k) else {
            return match self.failures.get(k) {
                Some(w) => format!("FAIL: {w}"),
                None => "-".into(),
            };
        };
        let mut s = m.show(v);
        let n = self.samples[k].len();
        let raw = |m: Metric| self.med(&(net, rt, m, Impl::Raw));
        let ratio = match m {
            // Against ONE raw connection moving the same bytes.
            Metric::Bulk(_) if imp != Impl::Raw => raw(Metric::Bulk(1)).map(|r| v / r),
            Metric::RttP50 | Metric::RttP99 | Metric::Churn if imp != Impl::Raw => {
                raw(m).map(|r| v / r)
            }
            Metric::StalledBusy => self.med(&(net, rt, Metric::StalledRatio, imp)),
            Metric::Wan(_) | Metric::WanOriginal { .. } if imp != Impl::Raw => {
                raw(Metric::Wan(1)).map(|r| v / r)
            }
            // Against as many raw connections.
            Metric::Pool(_) if imp != Impl::Raw => raw(m).map(|r| v / r),
            _ => None,
        };
        if let Some(r) = ratio {
            let _ = write!(s, " ({r:.2}x)");
        }
        if let Some(shape) = net.shape() {
            let rtt = shape.rtt().as_secs_f64();
            match (m, imp) {
                // The self-check: the ping against the link's round trip, raw against its rate.
                (Metric::WanPing, _) => {
                    let _ = write!(s, " ({:.2} of the rtt)", v / rtt);
                }
                (Metric::Wan(1), Impl::Raw) => {
                    let _ = write!(s, " ({:.2} of the rate)", v / shape.rate as f64);
                }
                (Metric::Pool(n), Impl::Raw) => {
                    let _ = write!(
                        s,
                        " ({:.2} of {n} x the rate)",
                        v / (n as f64 * shape.rate as f64)
                    );
                }
                // The original's fixed window: at most one window per round trip.
                (Metric::Wan(1), Impl::SmuxBase) | (Metric::WanOriginal { .. }, _) => {
                    let per_rtt = f64::from(ysmux::DEFAULT_WINDOW) / rtt;
                    let _ = write!(s, " ({:.2} of 512 KiB/rtt)", v / per_rtt);
                }
                _ => {}
            }
        }
        if self.failures.contains_key(k) {
            let _ = write!(s, " [{n} ok, some failed]");
        }
        s
    }

    fn present<T: Copy + Ord>(&self, f: impl Fn(&Key) -> T) -> Vec<T> {
        let mut v: Vec<T> = self
            .samples
            .keys()
            .chain(self.failures.keys())
            .map(f)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The tables, one per transport and runtime; markdown when `md`.
    pub fn tables(&self, md: bool) -> String {
        let impls = self.present(|k| k.3);
        let mut out = String::new();
        let groups = self.present(|k| (k.0, k.1 == RtKind::Smol));
        for (net, smol) in groups {
            let rt = if smol { RtKind::Smol } else { RtKind::Tokio };
            let metrics: Vec<Metric> = self
                .present(|k| k.2)
                .into_iter()
                .filter(|m| *m != Metric::StalledRatio)
                .filter(|m| {
                    impls.iter().any(|i| {
                        let k = (net, rt, *m, *i);
                        self.samples.contains_key(&k) || self.failures.contains_key(&k)
                    })
                })
                .collect();
            if metrics.is_empty() {
                continue;
            }
            let title = format!("{} / {}", net.name(), rt.name());
            let mut rows: Vec<Vec<String>> = Vec::new();
            let mut head = vec![title.clone()];
            head.extend(impls.iter().map(|i| i.name().to_string()));
            rows.push(head);
            for m in metrics {
                let mut row = vec![m.label()];
                row.extend(impls.iter().map(|i| self.cell(&(net, rt, m, *i))));
                rows.push(row);
            }
            if md {
                let _ = writeln!(out, "\n**{title}**\n");
                for (i, r) in rows.iter().enumerate() {
                    let _ = writeln!(out, "| {} |", r.join(" | "));
                    if i == 0 {
                        let _ = writeln!(out, "|{}", "---|".repeat(r.len()));
                    }
                }
            } else {
                let widths: Vec<usize> = (0..rows[0].len())
                    .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                    .collect();
                let _ = writeln!(out);
                for r in &rows {
                    let line: Vec<String> = r
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect();
                    let _ = writeln!(out, "{}", line.join("  ").trim_end());
                }
            }
        }
        out
    }

    pub fn csv(&self) -> String {
        let mut out = String::from("net,runtime,metric,impl,run,value\n");
        for ((net, rt, m, imp), v) in &self.samples {
            for (i, x) in v.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{}",
                    net.name(),
                    rt.name(),
                    m.label(),
                    imp.name(),
                    i,
                    x
                );
            }
        }
        for ((net, rt, m, imp), why) in &self.failures {
            let _ = writeln!(
                out,
                "{},{},{},{},fail,\"{}\"",
                net.name(),
                rt.name(),
                m.label(),
                imp.name(),
                why.replace('"', "'")
            );
        }
        out
    }

    /// Throughput against stream count, one panel per transport and runtime, one line per
    /// implementation, raw (one connection) as a dashed line.
    pub fn svg(&self) -> Option<String> {
        let counts: Vec<usize> = self
            .present(|k| k.2)
            .into_iter()
            .filter_map(|m| {
                if let Metric::Bulk(s) = m {
                    Some(s)
                } else {
                    None
                }
            })
            .collect();
        if counts.is_empty() {
            return None;
        }
        let panels: Vec<(NetKind, RtKind)> = [NetKind::Tcp, NetKind::Pipe]
            .into_iter()
            .flat_map(|n| {
                [RtKind::Tokio, RtKind::Smol]
                    .into_iter()
                    .map(move |r| (n, r))
            })
            .filter(|(n, r)| {
                counts.iter().any(|s| {
                    self.samples
                        .keys()
                        .any(|k| k.0 == *n && k.1 == *r && k.2 == Metric::Bulk(*s))
                })
            })
            .collect();
        let colors = color;
        let (pw, ph, ml, mt, mb) = (440.0, 300.0, 60.0, 40.0, 45.0);
        let cols = panels.len().min(2);
        let rows = panels.len().div_ceil(2);
        let width = cols as f64 * pw + 20.0;
        let height = rows as f64 * ph + 70.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="10" y="20" font-size="15" font-weight="bold">bulk throughput against stream count (median GiB/s; dashed: one raw connection)</text>"#
        );
        let impls: Vec<Impl> = self.present(|k| k.3);
        let mut lx = 10.0;
        for i in &impls {
            let _ = writeln!(
                s,
                r#"<rect x="{lx}" y="30" width="14" height="4" fill="{}"/><text x="{}" y="36">{}</text>"#,
                colors(*i),
                lx + 18.0,
                i.name()
            );
            lx += 30.0 + 7.5 * i.name().len() as f64;
        }
        let xs = |idx: usize, x0: f64, w: f64| {
            if counts.len() == 1 {
                x0 + w / 2.0
            } else {
                x0 + w * idx as f64 / (counts.len() - 1) as f64
            }
        };
        for (p, (net, rt)) in panels.iter().enumerate() {
            let ox = 10.0 + (p % 2) as f64 * pw;
            let oy = 50.0 + (p / 2) as f64 * ph;
            let (x0, y0, w, h) = (ox + ml, oy + mt, pw - ml - 20.0, ph - mt - mb);
            let mut ymax: f64 = 0.0;
            for i in &impls {
                for c in &counts {
                    if let Some(v) = self.med(&(*net, *rt, Metric::Bulk(*c), *i)) {
                        ymax = ymax.max(v / GIB);
                    }
                }
            }
            if ymax <= 0.0 {
                continue;
            }
            let step = nice_step(ymax / 5.0);
            let ytop = (ymax / step).ceil() * step;
            let y = |v: f64| y0 + h - h * v / ytop;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" font-weight="bold">{} / {} ({} workers)</text>"#,
                x0,
                oy + 25.0,
                if *net == NetKind::Tcp {
                    "loopback TCP"
                } else {
                    "in-memory pipe"
                },
                rt.name(),
                crate::rt::workers()
            );
            let mut t = 0.0;
            while t <= ytop + step / 2.0 {
                let yy = y(t);
                let _ = writeln!(
                    s,
                    r##"<line x1="{x0}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                    x0 + w,
                    x0 - 6.0,
                    yy + 4.0,
                    trim(t)
                );
                t += step;
            }
            for (ci, c) in counts.iter().enumerate() {
                let xx = xs(ci, x0, w);
                let _ = writeln!(
                    s,
                    r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{c}</text>"#,
                    y0 + h + 16.0
                );
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">streams</text>"#,
                x0 + w / 2.0,
                y0 + h + 32.0
            );
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#000"/>"##,
                y0 + h,
                x0 + w,
                y0 + h
            );
            for i in &impls {
                if *i == Impl::Raw {
                    if let Some(v) = self.med(&(*net, *rt, Metric::Bulk(1), Impl::Raw)) {
                        let yy = y(v / GIB);
                        let _ = writeln!(
                            s,
                            r#"<line x1="{x0}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{}" stroke-dasharray="6,4" stroke-width="2"/>"#,
                            x0 + w,
                            colors(Impl::Raw)
                        );
                    }
                    continue;
                }
                let pts: Vec<(f64, f64)> = counts
                    .iter()
                    .enumerate()
                    .filter_map(|(ci, c)| {
                        self.med(&(*net, *rt, Metric::Bulk(*c), *i))
                            .map(|v| (xs(ci, x0, w), y(v / GIB)))
                    })
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                    path.join(" "),
                    colors(*i)
                );
                for (a, b) in pts {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{a:.1}" cy="{b:.1}" r="3.5" fill="{}"/>"#,
                        colors(*i)
                    );
                }
            }
        }
        let _ = writeln!(s, "</svg>");
        Some(s)
    }
}

impl Results {
    /// The wan scenario as bars: for each round trip and stream count, each implementation's
    /// throughput as a share of raw TCP through the same link (1.0: the link's full rate).
    pub fn wan_svg(&self) -> Option<String> {
        let groups: Vec<(NetKind, RtKind, usize)> = self
            .present(|k| (k.0, k.1, k.2))
            .into_iter()
            .filter_map(|(n, r, m)| match (n, m) {
                (NetKind::Wan { .. }, Metric::Wan(s)) => Some((n, r, s)),
                _ => None,
            })
            .collect();
        if groups.is_empty() {
            return None;
        }
        let impls: Vec<Impl> = self
            .present(|k| k.3)
            .into_iter()
            .filter(|i| *i != Impl::Raw)
            .collect();
        let (bar, gap, label_w, plot_w) = (14.0, 18.0, 190.0, 420.0);
        let title_h = 18.0;
        let group_h = title_h + bar * impls.len() as f64 + gap;
        let height = 70.0 + group_h * groups.len() as f64 + 30.0;
        let width = label_w + plot_w + 140.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="10" y="20" font-size="15" font-weight="bold">one long, fat link (1 Gbit/s): throughput as a share of raw TCP through it (medians)</text>"#
        );
        let x = |r: f64| label_w + plot_w * r.min(1.1) / 1.1;
        for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let xx = x(t);
            let _ = writeln!(
                s,
                r##"<line x1="{xx:.1}" y1="40" x2="{xx:.1}" y2="{:.1}" stroke="{}"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                height - 30.0,
                if t == 1.0 { "#555555" } else { "#e0e0e0" },
                height - 14.0,
                trim(t)
            );
        }
        let mut y = 50.0;
        for (net, rt, streams) in groups {
            let _ = writeln!(
                s,
                r#"<text x="10" y="{:.1}" font-weight="bold">{}, {streams} stream{}</text>"#,
                y + 12.0,
                net.name().replace(" 1 Gbit/s", ""),
                if streams == 1 { "" } else { "s" }
            );
            let raw = self.med(&(net, rt, Metric::Wan(1), Impl::Raw));
            for (k, i) in impls.iter().enumerate() {
                let yy = y + title_h + k as f64 * bar;
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                    label_w - 6.0,
                    yy + bar - 3.0,
                    i.name()
                );
                let (Some(v), Some(r)) = (self.med(&(net, rt, Metric::Wan(streams), *i)), raw)
                else {
                    continue;
                };
                let ratio = v / r;
                let _ = writeln!(
                    s,
                    r#"<rect x="{label_w}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}">{ratio:.2}</text>"#,
                    x(ratio) - label_w,
                    bar - 2.0,
                    color(*i),
                    x(ratio) + 4.0,
                    yy + bar - 3.0
                );
            }
            y += group_h;
        }
        let _ = writeln!(s, "</svg>");
        Some(s)
    }
}

fn color(i: Impl) -> &'static str {
    match i {
        Impl::Raw => "#555555",
        Impl::Smux => "#d62728",
        Impl::SmuxBase => "#e377c2",
        Impl::SmuxX1 => "#9467bd",
        Impl::SmuxX2 => "#8c564b",
        Impl::Yamux => "#1f77b4",
        Impl::TokioYamux => "#2ca02c",
        Impl::AsyncSmux => "#ff7f0e",
    }
}

fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * p
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
