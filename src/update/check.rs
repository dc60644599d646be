//! Whether the registry has a different image for a stack's tag, without pulling: the
//! Engine API's distribution inspect (`GET /distribution/{name}/json`) gives the digest
//! the registry has for the tag now; the local image's `RepoDigests` say which digests it
//! was pulled as. An image built here (a `build:` section, or no `RepoDigests` at all) and
//! one pinned by digest (`name@sha256:…`) have no newer version to look for.

use std::collections::BTreeMap;

use bollard::Docker;
use hlsys_core::model::Stack;
use serde::Serialize;

/// What the check found for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The registry's digest for the tag is one the local image was pulled as.
    Current,
    /// The registry has a different image for the tag.
    Update,
    /// Not present here: the next start (or `hlsys update`) pulls it.
    Absent,
    /// Made here (`build:`, or never pulled: no RepoDigests); no registry to ask.
    BuiltLocally,
    /// `name@sha256:…`: it can never change.
    Pinned,
    /// The registry could not be asked (down, unknown tag, refused).
    Error,
}

impl State {
    /// The word the table prints.
    pub fn word(&self) -> &'static str {
        match self {
            State::Current => "current",
            State::Update => "update",
            State::Absent => "absent",
            State::BuiltLocally => "built locally",
            State::Pinned => "pinned by digest",
            State::Error => "error",
        }
    }

    /// Whether `hlsys update` would pull something for it.
    pub fn pending(&self) -> bool {
        matches!(self, State::Update | State::Absent)
    }
}

/// The local image of a tag, as far as the check needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    pub id: String,
    /// `repo@sha256:…` entries.
    pub repo_digests: Vec<String>,
    pub created: Option<String>,
}

/// One image of one stack, with the services that run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageCheck {
    pub stack: String,
    pub image: String,
    pub services: Vec<String>,
    pub state: State,
    /// The local image id (`sha256:…`), when present.
    pub local_id: Option<String>,
    /// The digest the local image was pulled as that matches the registry's, else its first.
    pub local_digest: Option<String>,
    pub remote_digest: Option<String>,
    /// When the local image was built (the image config's `created`). The registry's
    /// image has a date too, but only in its config blob, which the Engine API gives only
    /// by pulling; so it is not shown.
    pub local_created: Option<String>,
    /// Why the registry could not be asked.
    pub error: Option<String>,
}

/// The images of `stacks` in stack order, one entry per (stack, image), services sorted.
pub fn images_of(stacks: &[&Stack]) -> Vec<(String, String, Vec<String>, bool)> {
    let mut out = Vec::new();
    for s in stacks {
        let mut by_image: BTreeMap<&str, (Vec<String>, bool)> = BTreeMap::new();
        for svc in &s.service_details {
            let e = by_image.entry(svc.image.as_str()).or_default();
            e.0.push(svc.name.clone());
            e.1 |= svc.build;
        }
        for (image, (services, build)) in by_image {
            out.push((s.id.clone(), image.to_string(), services, build));
        }
    }
    out
}

/// A reference pinned by digest: `name@sha256:…` (a tag before it changes nothing).
pub fn pinned(image: &str) -> bool {
    image.contains('@')
}

/// The digest part of a `repo@sha256:…` entry.
fn digest_of(repo_digest: &str) -> &str {
    repo_digest.rsplit_once('@').map_or(repo_digest, |(_, d)| d)
}

/// The verdict from what is known locally and what the registry answered (`None`: not
/// asked, for images that need no asking).
pub fn classify(build: bool, image: &str, local: Option<&Local>, remote: Option<&Result<String, String>>) -> State {
    if pinned(image) {
        return State::Pinned;
    }
    if build || local.is_some_and(|l| l.repo_digests.is_empty()) {
        return State::BuiltLocally;
    }
    match (remote, local) {
        (Some(Err(_)), _) | (None, _) => State::Error,
        (Some(Ok(_)), None) => State::Absent,
        (Some(Ok(r)), Some(l)) if l.repo_digests.iter().any(|d| digest_of(d) == r) => State::Current,
        (Some(Ok(_)), Some(_)) => State::Update,
    }
}

/// Whether the registry needs asking at all for this image.
pub fn needs_registry(build: bool, image: &str, local: Option<&Local>) -> bool {
    !pinned(image) && !build && !local.is_some_and(|l| l.repo_digests.is_empty())
}

/// The local image of `image`, `None` when absent.
pub async fn local(docker: &Docker, image: &str) -> anyhow::Result<Option<Local>> {
    match docker.inspect_image(image).await {
        Ok(i) => Ok(Some(Local {
            id: i.id.unwrap_or_default(),
            repo_digests: i.repo_digests.unwrap_or_default(),
            created: i.created.map(|c| c.to_string()),
        })),
        Err(e) if crate::docker::status_code(&e) == Some(404) => Ok(None),
        Err(e) => Err(anyhow::anyhow!("inspecting {image}: {e}")),
    }
}

/// The registry's digest for `image`'s tag, or why it could not be had.
pub async fn remote(docker: &Docker, image: &str) -> Result<String, String> {
    match docker.inspect_registry_image(image, None).await {
        Ok(d) => d
            .descriptor
            .digest
            .ok_or_else(|| "the registry gave no digest".to_string()),
        Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => Err(message),
        Err(e) => Err(e.to_string()),
    }
}

/// Checks one image of one stack.
pub async fn check_one(docker: &Docker, stack: &str, image: &str, services: Vec<String>, build: bool) -> ImageCheck {
    let (local, local_err) = match local(docker, image).await {
        Ok(l) => (l, None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let remote = if local_err.is_none() && needs_registry(build, image, local.as_ref()) {
        Some(remote(docker, image).await)
    } else {
        None
    };
    let state = match &local_err {
        Some(_) => State::Error,
        None => classify(build, image, local.as_ref(), remote.as_ref()),
    };
    let remote_digest = remote.as_ref().and_then(|r| r.as_ref().ok().cloned());
    let local_digest = local.as_ref().and_then(|l| {
        let matching = l
            .repo_digests
            .iter()
            .find(|d| Some(digest_of(d)) == remote_digest.as_deref());
        matching.or(l.repo_digests.first()).map(|d| digest_of(d).to_string())
    });
    ImageCheck {
        stack: stack.to_string(),
        image: image.to_string(),
        services,
        state,
        local_id: local.as_ref().map(|l| l.id.clone()),
        local_digest,
        remote_digest,
        local_created: local.and_then(|l| l.created),
        error: local_err.or_else(|| remote.and_then(Result::err)),
    }
}

/// Checks every image of `stacks`, a few registries asked at once.
pub async fn check_all(docker: &Docker, stacks: &[&Stack]) -> Vec<ImageCheck> {
    use futures_util::stream::{self, StreamExt};
    let jobs = images_of(stacks)
        .into_iter()
        .map(|(stack, image, services, build)| async move { check_one(docker, &stack, &image, services, build).await });
    stream::iter(jobs).buffered(4).collect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111";
    const D2: &str = "sha256:2222";

    fn pulled(digests: &[&str]) -> Local {
        Local {
            id: "sha256:abcd".into(),
            repo_digests: digests.iter().map(|d| format!("reg:5000/db@{d}")).collect(),
            created: None,
        }
    }

    #[test]
    fn current_only_when_a_pulled_digest_is_the_registrys() {
        let l = pulled(&[D1]);
        assert_eq!(
            classify(false, "reg:5000/db:1", Some(&l), Some(&Ok(D1.into()))),
            State::Current
        );
        assert_eq!(
            classify(false, "reg:5000/db:1", Some(&l), Some(&Ok(D2.into()))),
            State::Update
        );
        let both = pulled(&[D2, D1]);
        assert_eq!(
            classify(false, "reg:5000/db:1", Some(&both), Some(&Ok(D1.into()))),
            State::Current
        );
    }

    #[test]
    fn absent_error_built_and_pinned() {
        assert_eq!(classify(false, "db:1", None, Some(&Ok(D1.into()))), State::Absent);
        assert_eq!(
            classify(false, "db:1", Some(&pulled(&[D1])), Some(&Err("down".into()))),
            State::Error
        );
        assert_eq!(classify(true, "db:1", Some(&pulled(&[D1])), None), State::BuiltLocally);
        assert_eq!(classify(false, "db:1", Some(&pulled(&[])), None), State::BuiltLocally);
        assert_eq!(classify(false, &format!("db:1@{D1}"), None, None), State::Pinned);
        assert!(!needs_registry(false, &format!("db@{D1}"), None));
        assert!(!needs_registry(false, "db:1", Some(&pulled(&[]))));
        assert!(needs_registry(false, "db:1", None));
        assert!(State::Absent.pending() && State::Update.pending() && !State::Error.pending());
    }
}
