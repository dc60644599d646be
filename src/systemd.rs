//! The systemd manager over the system bus (org.freedesktop.systemd1), with zbus.
//! hlsys never runs systemctl. The calls go through typed proxies ([`ManagerProxy`],
//! [`UnitProxy`], [`ServiceProxy`]) declaring just the members hlsys uses, with the
//! signatures of org.freedesktop.systemd1(5); dbus/README.md lists them.
//!
//! Besides plain calls (reload, list units, read properties) this module follows jobs:
//! [`Events::subscribe`] adds the match rules for the manager's `JobNew`/`JobRemoved`
//! signals and the units' `PropertiesChanged`, then calls `Subscribe`, all before any job
//! is enqueued, and a task drains the signals into a channel from then on; so no signal
//! of a job can be missed, however fast the job ends, and a full queue can never hold up
//! the reply to a later call. [`enqueue`] uses `EnqueueUnitJob`, whose reply lists every
//! job the transaction installed (the jobs it pulled in as well as the one asked for).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use zbus::message::Type as MsgType;
use zbus::proxy::{CacheProperties, MethodFlags};
use zbus::{Connection, MatchRule, Message, MessageStream, OwnedObjectPath, OwnedVariant};

pub const DEST: &str = "org.freedesktop.systemd1";
pub const PATH: &str = "/org/freedesktop/systemd1";
pub const MANAGER: &str = "org.freedesktop.systemd1.Manager";
pub const UNIT_IFACE: &str = "org.freedesktop.systemd1.Unit";
pub const SERVICE_IFACE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
/// Object paths of units live below this one.
pub const UNIT_PATH_PREFIX: &str = "/org/freedesktop/systemd1/unit";

/// D-Bus errors that mean "you may not do this" (no root, no polkit authorisation).
const DENIED: &[&str] = &[
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
    "org.freedesktop.PolicyKit1.Error.NotAuthorized",
];
/// The one of [`DENIED`] that means "polkit would ask for a password, but the call did
/// not allow it to" (or no authentication agent answered).
const INTERACTIVE_REQUIRED: &str = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired";

/// A call that systemd refused for lack of privilege. Commands turn it into one plain
/// message (who may do it, how to allow a user) instead of a D-Bus error dump.
#[derive(Debug, thiserror::Error)]
#[error("systemd refused {method}: {error}")]
pub struct AccessDenied {
    pub method: String,
    /// The D-Bus error name.
    pub error: String,
}

impl AccessDenied {
    /// Whether polkit wanted to authenticate the user (an admin password) rather than
    /// saying no outright.
    pub fn wants_authentication(&self) -> bool {
        self.error == INTERACTIVE_REQUIRED
    }
}

/// Whether mutating calls may make polkit ask the user for a password. Set once by the
/// CLI (stdin is a terminal): a script or a unit must get a plain "no", never hang on a
/// prompt that an authentication agent of the same user shows elsewhere.
static INTERACTIVE_AUTH: AtomicBool = AtomicBool::new(false);

/// Sets the `ALLOW_INTERACTIVE_AUTHORIZATION` flag on every later call that systemd
/// authorises through polkit (start, stop, restart, reload).
pub fn allow_interactive_auth(on: bool) {
    INTERACTIVE_AUTH.store(on, Ordering::Relaxed);
}

fn auth_flags() -> MethodFlags {
    if INTERACTIVE_AUTH.load(Ordering::Relaxed) {
        MethodFlags::ALLOW_INTERACTIVE_AUTH
    } else {
        MethodFlags::empty()
    }
}

/// A manager method that systemd authorises through polkit, called with
/// [`auth_flags`]: the typed proxy methods cannot carry per-call flags, so these go
/// through the proxy's `call_with_flags` with the same member names and signatures.
async fn call_authorised<B, R>(m: &ManagerProxy<'_>, method: &'static str, body: &B) -> zbus::Result<R>
where
    B: serde::Serialize + zbus::DynamicType,
    R: for<'d> zbus::wire::DynamicDeserialize<'d>,
{
    m.inner()
        .call_with_flags(method, auth_flags(), body)
        .await?
        // `None` only comes with NO_REPLY_EXPECTED, which is never set here.
        .ok_or_else(|| zbus::Error::Failure(format!("no reply to {method}")))
}

/// The D-Bus error name of a method error reply, if `e` is one.
pub fn error_name(e: &zbus::Error) -> Option<String> {
    use zbus::DBusError;
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(f) => Some(f.name().to_string()),
        _ => None,
    }
}

fn call_error(method: &str, what: String, e: zbus::Error) -> anyhow::Error {
    match error_name(&e) {
        Some(name) if DENIED.contains(&name.as_str()) => anyhow::Error::new(AccessDenied {
            method: method.to_string(),
            error: name,
        }),
        _ => anyhow::Error::new(e).context(what),
    }
}

pub async fn system_bus() -> Result<Connection> {
    Connection::system().await.context("cannot connect to the system D-Bus")
}

/// One job of `EnqueueUnitJob`'s reply: id, job path, unit name, unit path, job type.
pub type AffectedJob = (u32, OwnedObjectPath, String, OwnedObjectPath, String);
/// `EnqueueUnitJob`'s reply: the job asked for (as [`AffectedJob`]) and every job the
/// transaction installed.
pub type EnqueueReply = (u32, OwnedObjectPath, String, OwnedObjectPath, String, Vec<AffectedJob>);
/// A row of `ListJobs`: id, unit, job type, job state, job path, unit path.
pub type JobEntry = (u32, String, String, String, OwnedObjectPath, OwnedObjectPath);
/// A row of `ListUnitsByNames`: name, description, load, active and sub state, followed
/// unit, unit path, job id, job type, job path.
pub type UnitEntry = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// The manager (org.freedesktop.systemd1.Manager): the methods hlsys calls. Reload,
/// StartUnit, StopUnit, RestartUnit and EnqueueUnitJob are authorised by polkit: their
/// signatures are declared here, but they are called through [`call_authorised`], which
/// adds the interactive-authorisation flag when the user sits at a terminal.
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    fn reload(&self) -> zbus::Result<()>;
    fn subscribe(&self) -> zbus::Result<()>;
    fn unsubscribe(&self) -> zbus::Result<()>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// systemd ≥ 243.
    fn enqueue_unit_job(&self, name: &str, job_type: &str, job_mode: &str) -> zbus::Result<EnqueueReply>;
    fn list_jobs(&self) -> zbus::Result<Vec<JobEntry>>;
    fn list_units_by_names(&self, names: &[String]) -> zbus::Result<Vec<UnitEntry>>;
}

/// A unit object (org.freedesktop.systemd1.Unit): the properties `hlsys status` reads.
/// Timestamps are µs since the epoch, 0 for "never".
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Unit {
    #[zbus(property)]
    fn active_enter_timestamp(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn state_change_timestamp(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn inactive_exit_timestamp(&self) -> zbus::Result<u64>;
}

/// A service object (org.freedesktop.systemd1.Service): the supervisor's STATUS= text.
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Service {
    #[zbus(property)]
    fn status_text(&self) -> zbus::Result<String>;
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;
}

pub async fn manager(conn: &Connection) -> Result<ManagerProxy<'static>> {
    ManagerProxy::new(conn).await.context("systemd manager proxy")
}

/// The unit object at `path`, without property caching (each read is one Get call).
pub async fn unit(conn: &Connection, path: &str) -> Result<UnitProxy<'static>> {
    let b = UnitProxy::builder(conn).path(path.to_string());
    b.cache_properties(CacheProperties::No)
        .build()
        .await
        .context("unit proxy")
}

/// The service object at `path`, without property caching.
pub async fn service(conn: &Connection, path: &str) -> Result<ServiceProxy<'static>> {
    let b = ServiceProxy::builder(conn).path(path.to_string());
    b.cache_properties(CacheProperties::No)
        .build()
        .await
        .context("service proxy")
}

/// `systemctl daemon-reload`: reruns the generators. The call returns once the reload
/// is done.
pub async fn reload(conn: &Connection) -> Result<()> {
    let m = manager(conn).await?;
    call_authorised::<_, ()>(&m, "Reload", &())
        .await
        .map_err(|e| call_error("Reload", "systemd Reload failed".into(), e))
}

/// Ends [`Events::subscribe`]'s `Subscribe`. Best effort: systemd also drops the
/// subscription when the connection closes.
pub async fn unsubscribe(conn: &Connection) {
    if let Ok(m) = manager(conn).await {
        let _ = m.unsubscribe().await;
    }
}

/// Enqueues a start job (mode "replace") and returns its object path without waiting.
pub async fn start_unit(conn: &Connection, unit: &str) -> Result<String> {
    let m = manager(conn).await?;
    let job: OwnedObjectPath = call_authorised(&m, "StartUnit", &(unit, "replace"))
        .await
        .map_err(|e| call_error("StartUnit", format!("systemd StartUnit {unit} failed"), e))?;
    Ok(job.to_string())
}

/// The object path of a unit, computed as systemd does (`bus_label_escape`): every byte
/// but ASCII letters and digits becomes `_xx`, so no `GetUnit` round trip is needed.
pub fn unit_path(unit: &str) -> String {
    let mut p = String::from(UNIT_PATH_PREFIX);
    p.push('/');
    if unit.is_empty() {
        p.push('_');
        return p;
    }
    for (i, b) in unit.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            p.push(b as char);
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    p
}

/// One job of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: u32,
    pub path: String,
    pub unit: String,
    /// "start", "stop", "restart", "verify-active", …
    pub job_type: String,
}

/// What [`enqueue`] got back: the job asked for and every job the transaction installed
/// (that one included).
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub job: Job,
    pub affected: Vec<Job>,
    /// `affected` is exactly the transaction (EnqueueUnitJob); false: an approximation.
    pub exact: bool,
}

/// Enqueues a job of `job_type` ("start", "stop", "restart") for `unit` in mode
/// "replace" and returns the jobs of the transaction, without waiting for them.
///
/// `EnqueueUnitJob` (systemd ≥ 243) reports the whole transaction. On an older systemd,
/// and for a non-root caller (whom the bus policy does not let send it), this falls back
/// to StartUnit/StopUnit/RestartUnit plus the jobs in the queue created after it
/// (`ListJobs`): a close approximation of the same set.
pub async fn enqueue(conn: &Connection, unit: &str, job_type: &str) -> Result<Enqueued> {
    let m = manager(conn).await?;
    let reply: zbus::Result<EnqueueReply> = call_authorised(&m, "EnqueueUnitJob", &(unit, job_type, "replace")).await;
    match reply {
        Ok((id, path, unit_id, _unit_path, jt, affected)) => {
            let job = Job {
                id,
                path: path.to_string(),
                unit: unit_id,
                job_type: jt,
            };
            let mut all: Vec<Job> = affected
                .into_iter()
                .map(|(id, p, u, _, t)| Job {
                    id,
                    path: p.to_string(),
                    unit: u,
                    job_type: t,
                })
                .collect();
            if !all.iter().any(|j| j.id == job.id) {
                all.insert(0, job.clone());
            }
            Ok(Enqueued {
                job,
                affected: all,
                exact: true,
            })
        }
        // UnknownMethod: systemd < 243. AccessDenied: systemd 252's bus policy
        // (org.freedesktop.systemd1.conf) lets only root send EnqueueUnitJob, while
        // StartUnit & co. are open to everyone and left to polkit; if polkit refuses
        // too, the fallback's own AccessDenied is the answer.
        Err(e)
            if matches!(
                error_name(&e).as_deref(),
                Some("org.freedesktop.DBus.Error.UnknownMethod" | "org.freedesktop.DBus.Error.AccessDenied")
            ) =>
        {
            enqueue_without_transaction(&m, unit, job_type).await
        }
        Err(e) if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.NoSuchUnit") => {
            Err(anyhow::Error::new(e).context(format!(
                "systemd does not know {unit}: run `hlsys reload` to regenerate the units"
            )))
        }
        Err(e) => Err(call_error(
            "EnqueueUnitJob",
            format!("systemd could not {job_type} {unit}"),
            e,
        )),
    }
}

/// [`enqueue`] without EnqueueUnitJob (systemd older than 243, or a non-root caller):
/// StartUnit/StopUnit/RestartUnit, and the jobs queued after it standing in for the
/// transaction.
async fn enqueue_without_transaction(m: &ManagerProxy<'_>, unit: &str, job_type: &str) -> Result<Enqueued> {
    let method = match job_type {
        "start" => "StartUnit",
        "stop" => "StopUnit",
        "restart" => "RestartUnit",
        other => anyhow::bail!("job type {other} needs EnqueueUnitJob (systemd ≥ 243)"),
    };
    let r: zbus::Result<OwnedObjectPath> = call_authorised(m, method, &(unit, "replace")).await;
    let path = r.map_err(|e| call_error(method, format!("systemd {method} {unit} failed"), e))?;
    let path = path.to_string();
    let id: u32 = path.rsplit('/').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let job = Job {
        id,
        path,
        unit: unit.to_string(),
        job_type: job_type.to_string(),
    };
    let mut affected = vec![job.clone()];
    affected.extend(list_jobs(m).await?.into_iter().filter(|j| j.id > id));
    Ok(Enqueued {
        job,
        affected,
        exact: false,
    })
}

/// The jobs in the queue now (`ListJobs`).
async fn list_jobs(m: &ManagerProxy<'_>) -> Result<Vec<Job>> {
    let jobs = m
        .list_jobs()
        .await
        .map_err(|e| call_error("ListJobs", "systemd ListJobs failed".into(), e))?;
    Ok(jobs
        .into_iter()
        .map(|(id, unit, jt, _state, path, _)| Job {
            id,
            path: path.to_string(),
            unit,
            job_type: jt,
        })
        .collect())
}

/// One row of `ListUnitsByNames`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitState {
    pub name: String,
    pub description: String,
    /// "loaded", "not-found", "masked", …
    pub load_state: String,
    /// "active", "activating", "inactive", "failed", …
    pub active_state: String,
    pub sub_state: String,
    pub path: String,
    /// 0 when no job is queued for the unit.
    pub job_id: u32,
    pub job_type: String,
}

impl UnitState {
    pub fn is_active(&self) -> bool {
        matches!(self.active_state.as_str(), "active" | "reloading")
    }
}

/// The state of `names` in one call (`ListUnitsByNames`, allowed to every user). Units
/// that do not exist come back with load state "not-found".
pub async fn list_units_by_names(conn: &Connection, names: &[String]) -> Result<Vec<UnitState>> {
    let rows = manager(conn)
        .await?
        .list_units_by_names(names)
        .await
        .map_err(|e| call_error("ListUnitsByNames", "systemd ListUnitsByNames failed".into(), e))?;
    Ok(rows
        .into_iter()
        .map(
            |(name, description, load_state, active_state, sub_state, _followed, path, job_id, job_type, _)| {
                UnitState {
                    name,
                    description,
                    load_state,
                    active_state,
                    sub_state,
                    path: path.to_string(),
                    job_id,
                    job_type,
                }
            },
        )
        .collect())
}

/// When the unit at `path` entered its current state: `ActiveEnterTimestamp` when
/// `active`, else `StateChangeTimestamp` (µs since the epoch); `None` for "never".
pub async fn state_since(conn: &Connection, path: &str, active: bool) -> Result<Option<u64>> {
    let u = unit(conn, path).await?;
    let t = if active {
        u.active_enter_timestamp().await
    } else {
        u.state_change_timestamp().await
    };
    let t = t.map_err(|e| call_error("Get", format!("reading the timestamps of {path}"), e))?;
    Ok(Some(t).filter(|t| *t > 0))
}

/// The `StatusText` of the service at `path` (its main process's STATUS=).
pub async fn status_text(conn: &Connection, path: &str) -> Result<String> {
    let s = service(conn, path).await?;
    s.status_text()
        .await
        .map_err(|e| call_error("Get", format!("reading StatusText of {path}"), e))
}

/// A signal from the manager or a unit, as far as hlsys cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    JobNew {
        id: u32,
        job: String,
        unit: String,
    },
    /// `result`: done, canceled, timeout, failed, dependency, skipped, …
    JobRemoved {
        id: u32,
        job: String,
        unit: String,
        result: String,
    },
    /// `PropertiesChanged` of a unit object: the values hlsys shows, when they changed.
    Unit {
        path: String,
        change: UnitChange,
    },
}

/// The properties of a unit that progress shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitChange {
    pub active_state: Option<String>,
    pub sub_state: Option<String>,
    /// The service's `StatusText` (the supervisor's STATUS=).
    pub status_text: Option<String>,
}

impl UnitChange {
    pub fn is_empty(&self) -> bool {
        self.active_state.is_none() && self.sub_state.is_none() && self.status_text.is_none()
    }
}

fn parse_event(msg: &Message) -> Option<Event> {
    let h = msg.header();
    let member = h.member()?.as_str().to_string();
    let path = h.path()?.as_str().to_string();
    let body = msg.body();
    match member.as_str() {
        "JobNew" => {
            let (id, job, unit): (u32, OwnedObjectPath, String) = body.deserialize().ok()?;
            Some(Event::JobNew {
                id,
                job: job.to_string(),
                unit,
            })
        }
        "JobRemoved" => {
            let (id, job, unit, result): (u32, OwnedObjectPath, String, String) = body.deserialize().ok()?;
            Some(Event::JobRemoved {
                id,
                job: job.to_string(),
                unit,
                result,
            })
        }
        "PropertiesChanged" => {
            let (iface, changed, _invalidated): (String, HashMap<String, OwnedVariant>, Vec<String>) =
                body.deserialize().ok()?;
            if iface != UNIT_IFACE && iface != SERVICE_IFACE {
                return None;
            }
            let s = |k: &str| {
                changed
                    .get(k)
                    .and_then(|v| v.try_clone().ok())
                    .and_then(|v| String::try_from(v).ok())
            };
            let change = UnitChange {
                active_state: s("ActiveState"),
                sub_state: s("SubState"),
                status_text: s("StatusText"),
            };
            (!change.is_empty()).then_some(Event::Unit { path, change })
        }
        _ => None,
    }
}

/// The manager's job signals and the units' property changes, from before the first job
/// is enqueued until this is dropped.
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
    task: tokio::task::JoinHandle<()>,
}

impl Events {
    /// Adds the match rules (each `AddMatch` is answered before this goes on), then calls
    /// `Subscribe`, so that every signal about a job enqueued afterwards arrives.
    pub async fn subscribe(conn: &Connection) -> Result<Events> {
        let queue = NonZeroUsize::new(4096);
        let manager_signals = MatchRule::builder()
            .msg_type(MsgType::Signal)
            .sender(DEST)
            .path(PATH)
            .interface(MANAGER)
            .build()?;
        let units = MatchRule::builder()
            .msg_type(MsgType::Signal)
            .sender(DEST)
            .path_namespace(UNIT_PATH_PREFIX)
            .interface(PROPERTIES)
            .member("PropertiesChanged")
            .build()?;
        let a = MessageStream::for_match_rule(manager_signals, conn, queue)
            .await
            .context("adding a D-Bus match rule")?;
        let b = MessageStream::for_match_rule(units, conn, queue)
            .await
            .context("adding a D-Bus match rule")?;
        let (tx, rx) = mpsc::unbounded_channel();
        // Drained from now on, whatever the caller does: a stream left unpolled would
        // block the connection, the replies to our own calls included.
        let task = tokio::spawn(async move {
            let mut merged = futures_util::stream::select(a, b);
            while let Some(m) = merged.next().await {
                let Ok(m) = m else { continue };
                if let Some(ev) = parse_event(&m) {
                    if tx.send(ev).is_err() {
                        break;
                    }
                }
            }
        });
        manager(conn)
            .await?
            .subscribe()
            .await
            .map_err(|e| call_error("Subscribe", "systemd Subscribe failed".into(), e))?;
        Ok(Events { rx, task })
    }

    /// The next signal; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// A signal already received, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_are_escaped_like_systemd() {
        assert_eq!(
            unit_path("homelab-genai.target"),
            "/org/freedesktop/systemd1/unit/homelab_2dgenai_2etarget"
        );
        assert_eq!(
            unit_path("dbus.service"),
            "/org/freedesktop/systemd1/unit/dbus_2eservice"
        );
        assert_eq!(
            unit_path("a_b@1.service"),
            "/org/freedesktop/systemd1/unit/a_5fb_401_2eservice"
        );
        // A leading digit is escaped too (an object path element may not start with one
        // in systemd's label escaping).
        assert_eq!(unit_path("1x.service"), "/org/freedesktop/systemd1/unit/_31x_2eservice");
    }
}
