//! The systemd manager over the system bus (org.freedesktop.systemd1), with zbus.
//! hlsys never runs systemctl.

use anyhow::{Context, Result};
use zbus::Connection;

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

pub async fn system_bus() -> Result<Connection> {
    Connection::system().await.context("cannot connect to the system D-Bus")
}

/// `systemctl daemon-reload`: reruns the generators. The call returns once the reload
/// is done.
pub async fn reload(conn: &Connection) -> Result<()> {
    conn.call_method(Some(DEST), PATH, Some(MANAGER), "Reload", &())
        .await
        .context("systemd Reload failed")?;
    Ok(())
}

/// Enqueues a start job (mode "replace") and returns its object path without waiting.
pub async fn start_unit(conn: &Connection, unit: &str) -> Result<String> {
    let reply = conn
        .call_method(Some(DEST), PATH, Some(MANAGER), "StartUnit", &(unit, "replace"))
        .await
        .with_context(|| format!("systemd StartUnit {unit} failed"))?;
    let job: zbus::OwnedObjectPath = reply.body().deserialize().context("StartUnit reply")?;
    Ok(job.to_string())
}
