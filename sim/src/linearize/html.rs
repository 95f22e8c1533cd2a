//! A failure as a self-contained HTML page: one lane per client session,
//! each operation a bar from its invoke to its return on virtual time (an
//! indeterminate one runs to the right edge, dashed), the operations of the
//! failure in red, the key's other operations in the window in grey, and
//! the list of the failure's operations below.

use super::history::{Call, Recorded};
use super::{Failure, Kind};
use replica::proto::{Request, Response, request, request_op};
use std::collections::BTreeSet;
use std::fmt::Write as _;

const WIDTH: f64 = 1300.0;
const LANE: f64 = 74.0;
const LEFT: f64 = 90.0;

/// The page for `failure` of a run's history `ops`; `title` heads it.
pub fn render(title: &str, ops: &[Recorded], failure: &Failure) -> String {
    let marked: BTreeSet<usize> = failure.ops.iter().copied().collect();
    let (from, to) = window(ops, &failure.ops);
    let shown: Vec<usize> = failure
        .context
        .iter()
        .chain(&failure.ops)
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|&i| ops[i].invoke.us <= to && end_us(&ops[i], to) >= from)
        .collect();
    let lanes: Vec<u32> = shown
        .iter()
        .map(|&i| ops[i].client)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let scale = (WIDTH - LEFT - 20.0) / (to - from).max(1) as f64;
    let x = |us: u64| LEFT + (us.saturating_sub(from)) as f64 * scale;
    let height = 40.0 + LANE * lanes.len() as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}">"#
    );
    for (lane, client) in lanes.iter().enumerate() {
        let y = 30.0 + LANE * lane as f64;
        let _ = write!(
            svg,
            r#"<text x="4" y="{}" class="lane">client {client}</text><line x1="{LEFT}" y1="{}" x2="{WIDTH}" y2="{}" class="rule"/>"#,
            y + 20.0,
            y + LANE - 4.0,
            y + LANE - 4.0
        );
    }
    // Labels alternate between three lines of a lane so neighbours do not
    // overwrite each other.
    let mut in_lane = vec![0usize; lanes.len()];
    for &i in &shown {
        let rec = &ops[i];
        let lane = lanes.iter().position(|c| *c == rec.client).unwrap_or(0);
        let y = 30.0 + LANE * lane as f64;
        let line = in_lane[lane] % 3;
        in_lane[lane] += 1;
        let (x0, x1) = (
            x(rec.invoke.us),
            x(end_us(rec, to)).max(x(rec.invoke.us) + 3.0),
        );
        let class = match (marked.contains(&i), rec.returned.is_none()) {
            (true, false) => "op bad",
            (true, true) => "op bad open",
            (false, false) => "op",
            (false, true) => "op open",
        };
        let label = format!("#{i} {}", describe(rec));
        let _ = write!(
            svg,
            r#"<g><title>{}</title><rect class="{class}" x="{x0:.1}" y="{}" width="{:.1}" height="18" rx="3"/><text x="{:.1}" y="{}" class="label">{}</text></g>"#,
            escape(&format!(
                "{label} (invoked {}µs, {})",
                rec.invoke.us,
                returned(rec)
            )),
            y + 4.0,
            x1 - x0,
            x0 + 2.0,
            y + 34.0 + 13.0 * line as f64,
            escape(&truncate(&label, 60))
        );
    }
    svg.push_str("</svg>");
    page(title, failure, ops, &svg, (from, to))
}

fn page(title: &str, failure: &Failure, ops: &[Recorded], svg: &str, span: (u64, u64)) -> String {
    let mut list = String::new();
    for &i in &failure.ops {
        let _ = write!(
            list,
            "<li><b>#{i}</b> client {}: {} — invoked {} µs, {}</li>",
            ops[i].client,
            escape(&describe(&ops[i])),
            ops[i].invoke.us,
            escape(&returned(&ops[i]))
        );
    }
    let what = match failure.kind {
        Kind::Linearizability => "not linearizable",
        Kind::RevisionOrder => "contradicts the revision order",
        Kind::SerializableMonotonic => "serializable reads went backwards",
    };
    format!(
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>{t}</title><style>
body{{font:14px sans-serif;margin:16px;background:#fafafa}} h1{{font-size:18px}}
.lane{{font:12px monospace;fill:#333}} .rule{{stroke:#ddd}}
.op{{fill:#9aa5b1;stroke:#52606d}} .bad{{fill:#e12d39;stroke:#8a041a}} .open{{stroke-dasharray:4 3;fill-opacity:.35}}
.label{{font:11px monospace;fill:#222}} li{{font-family:monospace;margin:2px 0}}
</style></head><body><h1>{t}</h1>
<p>Key <b>{key}</b>: {what}. {detail}</p>
<p>Virtual time {from} µs to {to} µs. Red: the operations of the minimal failing sub-history; grey: the key's other operations in this window; dashed: no answer (indeterminate, or a further application of a retried request).</p>
{svg}
<h2>The failing operations</h2><ol>{list}</ol></body></html>
"#,
        t = escape(title),
        key = escape(failure.key.as_deref().unwrap_or("-")),
        detail = escape(&failure.detail),
        from = span.0,
        to = span.1,
    )
}

/// The time window around the failure's operations.
fn window(ops: &[Recorded], failing: &[usize]) -> (u64, u64) {
    let from = failing.iter().map(|&i| ops[i].invoke.us).min().unwrap_or(0);
    let last = failing
        .iter()
        .map(|&i| ops[i].returned.map_or(ops[i].invoke.us, |r| r.us))
        .max()
        .unwrap_or(from);
    let margin = (last - from) / 4 + 100_000;
    (from.saturating_sub(margin), last + margin)
}

fn end_us(rec: &Recorded, to: u64) -> u64 {
    rec.returned.map_or(to, |r| r.us)
}

fn returned(rec: &Recorded) -> String {
    match rec.returned {
        Some(r) => format!("returned {} µs", r.us),
        None => "no answer (indeterminate)".into(),
    }
}

/// One line for an operation: the call and what it returned.
pub fn describe(rec: &Recorded) -> String {
    let call = match &rec.call {
        Call::Write(req) => describe_request(req),
        Call::Read {
            range,
            serializable,
            ..
        } => format!(
            "{}range {}{}{}",
            if *serializable { "serializable " } else { "" },
            text(&range.key),
            if range.range_end.is_empty() {
                String::new()
            } else {
                format!("..{}", text(&range.range_end))
            },
            if range.revision > 0 {
                format!(" @{}", range.revision)
            } else {
                String::new()
            }
        ),
    };
    let by = rec.served_by.map_or(String::new(), |m| format!(" at m{m}"));
    match &rec.response {
        Some(resp) if matches!(rec.call, Call::Read { .. }) && resp.kvs.is_empty() => {
            format!("{call}{by} → {} (no key)", describe_response(resp))
        }
        Some(resp) => format!("{call}{by} → {}", describe_response(resp)),
        None => format!("{call} → ?"),
    }
}

fn describe_request(req: &Request) -> String {
    match &req.kind {
        Some(request::Kind::Put(p)) => format!("put {}={}", text(&p.key), text(&p.value)),
        Some(request::Kind::DeleteRange(d)) if d.range_end.is_empty() => {
            format!("delete {}", text(&d.key))
        }
        Some(request::Kind::DeleteRange(d)) => {
            format!("delete {}..{}", text(&d.key), text(&d.range_end))
        }
        Some(request::Kind::Txn(t)) => {
            let ops = |ops: &[replica::proto::RequestOp]| {
                ops.iter()
                    .map(|o| match &o.op {
                        Some(request_op::Op::Put(p)) => {
                            format!("put {}={}", text(&p.key), text(&p.value))
                        }
                        Some(request_op::Op::DeleteRange(d)) => format!("delete {}", text(&d.key)),
                        Some(request_op::Op::Range(r)) => format!("get {}", text(&r.key)),
                        None => "-".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let cmp = t
                .compare
                .iter()
                .map(|c| format!("{} t{} r{} {}", text(&c.key), c.target, c.result, c.number))
                .collect::<Vec<_>>()
                .join(" & ");
            format!(
                "txn if {cmp} then [{}] else [{}]",
                ops(&t.success),
                ops(&t.failure)
            )
        }
        Some(request::Kind::Compact(c)) => format!("compact {}", c.revision),
        _ => "other request".into(),
    }
}

fn describe_response(resp: &Response) -> String {
    if !resp.error.is_empty() {
        return format!("error {} (rev {})", resp.error, resp.revision);
    }
    let kvs: Vec<String> = resp
        .kvs
        .iter()
        .map(|kv| {
            format!(
                "{}={}@{}v{}",
                text(&kv.key),
                text(&kv.value),
                kv.mod_revision,
                kv.version
            )
        })
        .collect();
    format!(
        "rev {}{}{}{}",
        resp.revision,
        if resp.succeeded { " ok" } else { "" },
        if resp.deleted > 0 {
            format!(" deleted {}", resp.deleted)
        } else {
            String::new()
        },
        if kvs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", kvs.join(", "))
        }
    )
}

fn text(bytes: &[u8]) -> String {
    truncate(&String::from_utf8_lossy(bytes), 12)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
