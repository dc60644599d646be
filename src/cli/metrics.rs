//! `hlsys metrics [--serve]`: the Prometheus metrics of the tree (src/metrics.rs). With
//! `--serve`, the main process of `<prefix>-metrics@.service` behind the metrics socket:
//! it reads one HTTP request from stdin (the connection) and answers on stdout.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Result;
use futures_util::future::join_all;

use super::global::{config_failure, Global};
use crate::metrics::{render, GeneratorSample, StackSample};
use crate::network::{self, NetworkStatus};
use crate::systemd;
use hlsys_core::exit::EXIT_OK;
use hlsys_core::model::Model;

#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// Answer one HTTP request on stdin/stdout (the metrics socket's service)
    #[arg(long)]
    pub serve: bool,
}

/// Where the generator leaves its report (early generator directory of systemd).
pub const REPORT: &str = "/run/systemd/generator/hlsys-generator.json";

pub async fn samples(model: &Model) -> Result<Vec<StackSample>> {
    let conn = systemd::system_bus().await?;
    let names: Vec<String> = model.stacks.iter().map(|s| s.unit.clone()).collect();
    let states = systemd::list_units_by_names(&conn, &names).await?;
    let conn = &conn;
    let futs = model.stacks.iter().zip(states).map(|(s, st)| async move {
        let mut x = StackSample {
            id: s.id.clone(),
            layer: s.layer.clone(),
            services: s.services.clone(),
            active_state: st.active_state.clone(),
            ..Default::default()
        };
        if st.load_state != "loaded" {
            return x;
        }
        if let Ok(sv) = systemd::service(conn, &st.path).await {
            x.status_text = sv.status_text().await.unwrap_or_default();
            x.n_restarts = sv.n_restarts().await.unwrap_or(0);
        }
        if st.is_active() {
            if let Ok(u) = systemd::unit(conn, &st.path).await {
                let (a, b) = (u.active_enter_timestamp().await, u.inactive_exit_timestamp().await);
                if let (Ok(a), Ok(b)) = (a, b) {
                    if a >= b && b > 0 {
                        x.start_seconds = Some((a - b) as f64 / 1e6);
                    }
                }
            }
        }
        x
    });
    Ok(join_all(futs).await)
}

pub fn generator_sample() -> Option<GeneratorSample> {
    let text = hlsys_core::bounded::read_text_opt(std::path::Path::new(REPORT), 16 << 20).ok()??;
    let r: hlsys_core::generator::report::GeneratorReport = serde_json::from_str(&text).ok()?;
    let time = std::fs::metadata(REPORT)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64());
    Some(GeneratorSample {
        units: r.units.len(),
        skipped: r.skipped.len(),
        time,
    })
}

/// `hlsys network status` of the configured networks (None without any, or when Docker
/// does not answer: the other families need only systemd).
async fn networks(model: &Model) -> Option<Vec<NetworkStatus>> {
    if model.config.networks.is_empty() {
        return None;
    }
    let status = async { network::status(&crate::docker::connect().await?, &model.config).await };
    match status.await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!("network drift left out: {e:#}");
            None
        }
    }
}

pub fn text(model: &Model) -> Result<String> {
    let rt = crate::docker::runtime()?;
    let (s, n) = rt.block_on(async { tokio::join!(samples(model), networks(model)) });
    Ok(render(model, &s?, generator_sample().as_ref(), n.as_deref()))
}

/// Reads the request line and headers (bounded), answers GET/HEAD of any path.
fn serve(model: &Model) -> Result<()> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = String::new();
    let mut first = String::new();
    for i in 0..100 {
        line.clear();
        let n = (&mut input).take(8192).read_line(&mut line)?;
        if i == 0 {
            first = line.trim().to_string();
        }
        if n == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let method = first.split(' ').next().unwrap_or("");
    let mut out = std::io::stdout().lock();
    let (status, body) = match method {
        "GET" | "HEAD" => match text(model) {
            Ok(t) => ("200 OK", t),
            Err(e) => ("503 Service Unavailable", format!("hlsys metrics: {e:#}\n")),
        },
        _ => ("405 Method Not Allowed", "only GET\n".to_string()),
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(body.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

use std::io::Read as _;

pub fn run(global: &Global, args: &MetricsArgs) -> Result<ExitCode> {
    let model = match global.load_model() {
        Ok(m) => m,
        Err(e) => return Ok(config_failure(&e)),
    };
    if args.serve {
        serve(&model)?;
    } else {
        print!("{}", text(&model)?);
    }
    Ok(ExitCode::from(EXIT_OK))
}
