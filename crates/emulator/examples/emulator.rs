//! Runs the control-plane emulator until killed.
//!
//! `cargo run -p sandkeep-emulator --example emulator -- --listen 127.0.0.1:0
//! [--admin-key KEY] [--lease-ttl-seconds N] [--ping-interval-ms N]`
//!
//! Prints `listening on http://ADDR` once bound (tests read that line).

use sandkeep_emulator::{Emulator, EmulatorConfig};
use std::io::Write;
use std::time::Duration;

fn parse_args() -> Result<(String, EmulatorConfig), String> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut config = EmulatorConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--admin-key" => config.admin_key = value()?,
            "--lease-ttl-seconds" => {
                config.lease_ttl_seconds = value()?.parse().map_err(|e| format!("--lease-ttl-seconds: {e}"))?
            }
            "--ping-interval-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--ping-interval-ms: {e}"))?;
                config.ping_interval = Duration::from_millis(ms.max(1));
            }
            other => return Err(format!("unknown flag {other}; expected --listen, --admin-key, --lease-ttl-seconds, --ping-interval-ms")),
        }
    }
    Ok((listen, config))
}

#[tokio::main]
async fn main() {
    let (listen, config) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("emulator: {message}");
            std::process::exit(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("emulator: cannot listen on {listen}: {error}");
            std::process::exit(1);
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    if let Err(error) = Emulator::new(config).serve(listener).await {
        eprintln!("emulator: server error: {error}");
        std::process::exit(1);
    }
}
