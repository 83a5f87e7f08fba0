//! `loadgen web-report`: the runs of scripts/bench-web.sh (one JSON record a line, kind "web": the
//! app, row, clients, repetition, the server's peak OS threads and RSS, CPU, and wrk's JSON line from
//! bench/web/check.lua) become the medians per cell, a markdown table on stdout, the JSON file and a
//! grouped bar plot of requests/s. `--in` may also be a web.json written before (its runs are used).

use crate::report::{draw_legend, fmt_num, fmt_ratio, load_font, machine, now_utc, write_result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Rows in the order of the table and the plot; the subject (shim) is red.
const ROWS: [(&str, &str, RGBColor); 6] = [
    ("native", "native threads", RGBColor(31, 119, 180)),
    ("shim", "shim", RGBColor(214, 39, 40)),
    ("gevent-mysqlclient", "gevent + mysqlclient", RGBColor(160, 160, 160)),
    ("gevent-pymysql", "gevent + PyMySQL", RGBColor(44, 160, 44)),
    ("native-pymysql", "native threads + PyMySQL", RGBColor(148, 103, 189)),
    ("shim-pymysql", "shim + PyMySQL", RGBColor(255, 127, 14)),
];

const APPS: [(&str, &str); 2] = [
    (
        "django",
        "Django 3.2 on mysqlclient: SELECT SLEEP(0.02), a 20-row ORM query, a template; a connection per request",
    ),
    ("wsgi", "plain WSGI on mysqlclient: one SELECT SLEEP(0.02) per request, pooled connections"),
];

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_f64()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Requests per second of one run, from wrk's count and duration.
fn rps(run: &Value) -> Option<f64> {
    let req = num(run, &["wrk", "requests"])?;
    let us = num(run, &["wrk", "duration_us"])?;
    (us > 0.0).then(|| req / (us / 1e6))
}

/// Everything that is not a correct response: bad status or body, and wrk's socket errors and timeouts.
fn errors(run: &Value) -> Option<f64> {
    let bad = num(run, &["wrk", "bad"])?;
    let e = ["connect", "read", "write", "status", "timeout"]
        .iter()
        .filter_map(|k| num(run, &["wrk", "errors", k]))
        .sum::<f64>();
    Some(bad + e)
}

/// The medians of one (app, clients, row) cell over its runs.
struct Cell {
    runs: usize,
    failed: Vec<String>,
    rps: Option<f64>,
    rps_samples: Vec<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    errors: f64,
    good: f64,
    threads: Option<f64>,
    rss_mib: Option<f64>,
    cpu: Option<f64>,
    /// The server's CPU time per request (median over the runs): what a request costs, which the load
    /// of other processes on the machine moves far less than requests/s.
    cpu_ms_per_request: Option<f64>,
    db_cpu: Option<f64>,
}

fn cell(runs: &[&Value], app: &str, clients: u64, row: &str) -> Option<Cell> {
    let mine: Vec<&Value> = runs
        .iter()
        .copied()
        .filter(|r| {
            r["app"].as_str() == Some(app) && r["row"].as_str() == Some(row) && r["clients"].as_u64() == Some(clients)
        })
        .collect();
    if mine.is_empty() {
        return None;
    }
    let good: Vec<&Value> =
        mine.iter().copied().filter(|r| r.get("error").is_none() && r.get("wrk").is_some()).collect();
    let failed = mine.iter().filter_map(|r| r.get("error").and_then(|e| e.as_str()).map(String::from)).collect();
    let col = |f: &dyn Fn(&Value) -> Option<f64>| median(good.iter().filter_map(|r| f(r)).collect());
    let rps_samples: Vec<f64> = good.iter().filter_map(|r| rps(r)).collect();
    Some(Cell {
        runs: mine.len(),
        failed,
        rps: median(rps_samples.clone()),
        rps_samples,
        p50_ms: col(&|r| num(r, &["wrk", "latency_us", "p50"]).map(|v| v / 1e3)),
        p99_ms: col(&|r| num(r, &["wrk", "latency_us", "p99"]).map(|v| v / 1e3)),
        errors: good.iter().filter_map(|r| errors(r)).sum(),
        good: good.iter().filter_map(|r| num(r, &["wrk", "good"])).sum(),
        threads: col(&|r| num(r, &["os_threads_max"])),
        rss_mib: col(&|r| num(r, &["rss_max_kb"]).map(|v| v / 1024.0)),
        cpu: col(&|r| num(r, &["server_cpu_cores"])),
        cpu_ms_per_request: col(&|r| num(r, &["server_cpu_cores"]).zip(rps(r)).map(|(c, q)| c / q * 1e3)),
        db_cpu: col(&|r| num(r, &["mariadb_cpu_cores"])),
    })
}

fn opt(v: Option<f64>) -> Value {
    v.filter(|x| x.is_finite()).map(|x| json!((x * 100.0).round() / 100.0)).unwrap_or(Value::Null)
}

pub fn report(input: &str, out: &str, plot: &str, quick: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let mut all = Vec::new();
    // A previous web.json (its "runs") redraws the report; otherwise one record a line.
    let earlier = serde_json::from_str::<Value>(&text).ok().filter(|d| d.get("runs").is_some_and(|r| r.is_array()));
    if let Some(d) = &earlier {
        all = d["runs"].as_array().cloned().unwrap_or_default();
    } else {
        for (i, line) in text.lines().enumerate() {
            if !line.trim().is_empty() {
                all.push(serde_json::from_str::<Value>(line).map_err(|e| format!("{input}:{}: {e}", i + 1))?);
            }
        }
    }
    let runs: Vec<&Value> = all.iter().filter(|r| r["kind"].as_str() == Some("web")).collect();
    let clients: Vec<u64> =
        runs.iter().filter_map(|r| r["clients"].as_u64()).collect::<BTreeSet<_>>().into_iter().collect();
    let reps = runs.iter().filter_map(|r| r["rep"].as_u64()).max().unwrap_or(0);
    let window = runs.iter().find_map(|r| num(r, &["duration_s"])).unwrap_or(f64::NAN);
    let loads: Vec<f64> = runs.iter().filter_map(|r| num(r, &["load1"])).collect();
    // Redrawn from an earlier web.json: its date, machine and provenance, not today's.
    let kept = |k: &str| earlier.as_ref().and_then(|d| d.get(k)).filter(|v| !v.is_null()).cloned();
    let m = kept("machine").unwrap_or_else(machine);
    let date = kept("date").and_then(|d| d.as_str().map(String::from)).unwrap_or_else(now_utc);

    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "### Web: a Python app on a blocking MySQL driver, a thread per connection (requests/s)\n");
    let _ = writeln!(
        w,
        "{date}; {} cores, Linux {}; medians of {reps} run(s) of {window:.0} s per cell{}; load average (1 min) at the runs' starts {}–{}. \
         wsgiref + ThreadingMixIn (bench/web/server.py), wrk with bench/web/check.lua checking every response; \
         errors = wrong responses + wrk's socket errors and timeouts, summed over the runs; OS threads and RSS: the server's peaks; \
         server CPU: its CPU time per request and cores busy during the window (on a loaded machine requests/s follows the CPU share a \
         process gets, CPU per request much less).\n",
        m["cores"],
        m["kernel"].as_str().unwrap_or("?"),
        if quick { " (QUICK)" } else { "" },
        fmt_num(loads.iter().copied().reduce(f64::min)),
        fmt_num(loads.iter().copied().reduce(f64::max)),
    );
    let mut cells_json = Vec::new();
    let mut targets = Vec::new();
    let mut groups: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    let mut footnotes: Vec<String> = Vec::new();
    for (app, what) in APPS {
        if !runs.iter().any(|r| r["app"].as_str() == Some(app)) {
            continue;
        }
        let _ = writeln!(w, "**{app}**: {what}\n");
        let _ = writeln!(
            w,
            "| clients | server | requests/s | vs native | p50 / p99 ms | errors | OS threads | RSS MiB | server CPU ms/request (cores) | db cores |"
        );
        let _ = writeln!(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for &c in &clients {
            let native = cell(&runs, app, c, "native").and_then(|x| x.rps);
            let mut bars = Vec::new();
            let mut by_row: Vec<(&str, Cell)> = Vec::new();
            for (i, (row, label, _)) in ROWS.iter().enumerate() {
                let Some(x) = cell(&runs, app, c, row) else { continue };
                let mark = if x.failed.is_empty() {
                    String::new()
                } else {
                    footnotes.push(format!(
                        "{app} {row} {c}: {} of {} runs failed: {}",
                        x.failed.len(),
                        x.runs,
                        x.failed[0]
                    ));
                    "*".into()
                };
                let _ = writeln!(
                    w,
                    "| {c} | {label} | {}{mark} | {} | {} / {} | {} | {} | {} | {} ({}) | {} |",
                    fmt_num(x.rps),
                    fmt_ratio(x.rps.zip(native).map(|(a, b)| a / b)),
                    fmt_num(x.p50_ms),
                    fmt_num(x.p99_ms),
                    fmt_num(Some(x.errors)),
                    fmt_num(x.threads),
                    fmt_num(x.rss_mib),
                    fmt_num(x.cpu_ms_per_request),
                    fmt_num(x.cpu),
                    fmt_num(x.db_cpu),
                );
                if let Some(v) = x.rps {
                    bars.push((i, v));
                }
                cells_json.push(json!({
                    "app": app, "clients": c, "row": row, "runs": x.runs, "failed": x.failed,
                    "rps": opt(x.rps), "rps_samples": x.rps_samples, "p50_ms": opt(x.p50_ms), "p99_ms": opt(x.p99_ms),
                    "errors": x.errors, "good_responses": x.good, "os_threads": opt(x.threads), "rss_mib": opt(x.rss_mib),
                    "server_cpu_cores": opt(x.cpu), "server_cpu_ms_per_request": opt(x.cpu_ms_per_request), "mariadb_cpu_cores": opt(x.db_cpu),
                }));
                by_row.push((row, x));
            }
            groups.push((format!("{app}, {c} clients"), bars));
            targets.extend(cell_targets(app, c, &by_row));
        }
        let _ = writeln!(w);
    }
    if !targets.is_empty() {
        let _ = writeln!(w, "Issue 17's targets (shim row):\n");
        let _ = writeln!(w, "| app, clients | shim / best gevent ≥ 1.0 | shim / native ≥ 1.3 | p99 ≤ native's | 0 errors | OS threads ≤ workers + 4 |");
        let _ = writeln!(w, "|---|---|---|---|---|---|");
        for t in &targets {
            let c = |k: &str| t[k].as_str().unwrap_or("n/a").to_string();
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                c("cell"),
                c("vs_gevent"),
                c("vs_native"),
                c("p99"),
                c("errors"),
                c("threads")
            );
        }
        let _ = writeln!(w);
    }
    for n in &footnotes {
        let _ = writeln!(w, "\\* {n}  ");
    }
    bar_plot(plot, &format!("Web scenario: requests/s (median of {reps} run(s), higher is better)"), &groups)?;
    let _ = writeln!(w, "Plot: `{plot}`");
    print!("{md}");

    let mut doc = json!({
        "cells": cells_json,
        "targets": targets,
        "runs": runs,
        "plot": plot,
        "markdown": md,
    });
    for k in ["commit", "library_built"] {
        if let (Some(v), Some(o)) = (kept(k), doc.as_object_mut()) {
            o.insert(k.into(), v);
        }
    }
    write_result(out, &mut doc, &date, quick, m)
}

/// The shim row of one (app, clients) against the targets; "yes"/"no" with the numbers.
fn cell_targets(app: &str, clients: u64, by_row: &[(&str, Cell)]) -> Option<Value> {
    let get = |row: &str| by_row.iter().find(|(r, _)| *r == row).map(|(_, c)| c);
    let shim = get("shim")?;
    let native = get("native");
    let gevent = ["gevent-mysqlclient", "gevent-pymysql"]
        .iter()
        .filter_map(|r| get(r).and_then(|c| c.rps))
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    let verdict = |x: Option<f64>, ok: &dyn Fn(f64) -> bool, text: String| match x {
        Some(v) => format!("{} ({text})", if ok(v) { "yes" } else { "**no**" }),
        None => "n/a".into(),
    };
    let vs_g = shim.rps.zip(gevent).map(|(a, b)| a / b);
    let vs_n = shim.rps.zip(native.and_then(|n| n.rps)).map(|(a, b)| a / b);
    let p99 = shim.p99_ms.zip(native.and_then(|n| n.p99_ms));
    let workers = std::env::var("ASYNCSHIM_WORKERS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or_else(|| {
        // SAFETY: sysconf has no preconditions.
        unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) as f64 }
    });
    Some(json!({
        "cell": format!("{app}, {clients}"),
        "vs_gevent": verdict(vs_g, &|v| v >= 1.0, fmt_ratio(vs_g)),
        "vs_native": verdict(vs_n, &|v| v >= 1.3, fmt_ratio(vs_n)),
        "p99": verdict(p99.map(|(s, n)| s / n), &|v| v <= 1.0, p99.map(|(s, n)| format!("{} vs {} ms", fmt_num(Some(s)), fmt_num(Some(n)))).unwrap_or_default()),
        "errors": verdict(Some(shim.errors), &|v| v == 0.0, fmt_num(Some(shim.errors))),
        "threads": verdict(shim.threads, &|v| v <= workers + 4.0, format!("{} vs {}", fmt_num(shim.threads), workers + 4.0)),
    }))
}

/// One group of bars per (app, clients), one bar per row present, coloured as in ROWS.
fn bar_plot(path: &str, title: &str, groups: &[(String, Vec<(usize, f64)>)]) -> Result<(), String> {
    if groups.iter().all(|(_, b)| b.is_empty()) {
        return Ok(());
    }
    load_font()?;
    let err = |e: &dyn std::fmt::Display| format!("{path}: {e}");
    let used: Vec<usize> =
        groups.iter().flat_map(|(_, b)| b.iter().map(|(i, _)| *i)).collect::<BTreeSet<_>>().into_iter().collect();
    let slot = used.len() as f64 + 1.0; // bars per group plus a gap
    let ymax = groups.iter().flat_map(|(_, b)| b.iter().map(|(_, v)| *v)).fold(0.0, f64::max) * 1.15;
    let xmax = groups.len() as f64 * slot;
    let root = BitMapBackend::new(path, (1100, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("requests/s")
        .y_label_formatter(&|y| fmt_num(Some(*y)))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| err(&e))?;
    // Group names under the axis, centred on their bars.
    let label_style = TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (g, (name, _)) in groups.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(g as f64 * slot + (slot - 1.0) / 2.0, 0.0));
        root.draw(&Text::new(name.clone(), (px, py + 10), label_style.clone())).map_err(|e| err(&e))?;
    }
    for (k, &row) in used.iter().enumerate() {
        let (_, label, color) = ROWS[row];
        let style = ShapeStyle { color: color.to_rgba(), filled: true, stroke_width: 1 };
        let bars: Vec<Rectangle<(f64, f64)>> = groups
            .iter()
            .enumerate()
            .filter_map(|(g, (_, b))| b.iter().find(|(i, _)| *i == row).map(|(_, v)| (g, *v)))
            .map(|(g, v)| {
                let x0 = g as f64 * slot + k as f64;
                Rectangle::new([(x0 + 0.1, 0.0), (x0 + 0.9, v)], style)
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], style));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
