//! Which image changes a cluster may roll to. Servers keep their data in a
//! format that a newer release may change and an older one may not read,
//! and a release is tested against data written by the release just before
//! it. So, between image tags that are release versions
//! (`[v]MAJOR.MINOR.PATCH[-pre][+build]`):
//! - within one minor version, any change (patches, either way);
//! - up by one minor version, or to `MAJOR+1.0`;
//! - never down to an earlier minor version, and never past a minor version
//!   (0.3 → 0.5 goes through 0.4).
//!
//! A tag that is not a version (`latest`, `dev`, a digest) cannot be judged
//! and is allowed; so is anything while the annotation
//! `conclave.dev/skip-version-check: "true"` is set. A refused change is not
//! rolled: the StatefulSet keeps the running image until the spec names an
//! allowed one.

/// The annotation that turns the check off, for a person who knows better
/// (e.g. a tested downgrade).
pub const SKIP_VERSION_CHECK: &str = "conclave.dev/skip-version-check";

/// A release version, as an image tag names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

/// The version an image's tag names, if it names one.
pub fn image_version(image: &str) -> Option<Version> {
    if image.contains('@') {
        return None;
    }
    // The tag follows the last ':' after the last '/' (a registry's port
    // comes before a '/').
    let name = image.rsplit('/').next()?;
    let (_, tag) = name.rsplit_once(':')?;
    let core = tag.strip_prefix('v').unwrap_or(tag);
    let core = core.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| {
        (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            .then(|| p.parse::<u64>().ok())
            .flatten()
    });
    let version = Version {
        major: parts.next()??,
        minor: parts.next()??,
        patch: parts.next()??,
    };
    parts.next().is_none().then_some(version)
}

/// Whether every server may go from the image it runs (`running`, one per
/// pod) to `target`; the reason when one may not.
pub fn check_path(running: &[&str], target: &str) -> Result<(), String> {
    let Some(to) = image_version(target) else {
        return Ok(());
    };
    for from_image in running {
        let Some(from) = image_version(from_image) else {
            continue;
        };
        let (f, t) = ((from.major, from.minor), (to.major, to.minor));
        let next_minor = (from.major, from.minor + 1);
        let next_major = (from.major + 1, 0);
        if t == f || t == next_minor || t == next_major {
            continue;
        }
        return Err(if t < f {
            format!(
                "{target} is older than {from_image}: a server's data may be in a format the \
                 older release cannot read (set {SKIP_VERSION_CHECK}: \"true\" to roll anyway)"
            )
        } else {
            format!(
                "{target} skips a release after {from_image}: upgrade through each minor \
                 version, to {}.{}.x or {}.0.x first (set {SKIP_VERSION_CHECK}: \"true\" to roll \
                 anyway)",
                next_minor.0, next_minor.1, next_major.0
            )
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_tags_and_only_from_tags() {
        let v = |major, minor, patch| {
            Some(Version {
                major,
                minor,
                patch,
            })
        };
        assert_eq!(image_version("conclave:1.4.2"), v(1, 4, 2));
        assert_eq!(image_version("ghcr.io/acme/conclave:v0.3.0"), v(0, 3, 0));
        assert_eq!(
            image_version("registry:5000/conclave:2.0.1-rc.1"),
            v(2, 0, 1)
        );
        assert_eq!(image_version("conclave:1.4.2+build.7"), v(1, 4, 2));
        for none in [
            "conclave",
            "registry:5000/conclave",
            "conclave:latest",
            "conclave:e2e",
            "conclave:1.4",
            "conclave:1.4.2.9",
            "conclave:1..2",
            "conclave@sha256:0123abcd",
        ] {
            assert_eq!(image_version(none), None, "{none}");
        }
    }

    #[test]
    fn one_minor_version_up_at_a_time_never_down() {
        let allowed = [
            ("c:1.4.2", "c:1.4.9"),
            ("c:1.4.9", "c:1.4.2"),
            ("c:1.4.2", "c:1.5.0"),
            ("c:1.9.3", "c:2.0.0"),
            ("c:1.4.0", "c:2.0.0"),
            ("c:0.3.1", "c:0.4.0"),
            ("c:dev", "c:0.9.0"),
            ("c:0.9.0", "c:dev"),
        ];
        for (from, to) in allowed {
            assert_eq!(check_path(&[from], to), Ok(()), "{from} -> {to}");
        }
        let refused = [
            ("c:1.5.0", "c:1.4.9", "older"),
            ("c:2.0.0", "c:1.9.3", "older"),
            ("c:0.3.0", "c:0.5.0", "to 0.4.x or 1.0.x first"),
            ("c:1.4.0", "c:2.1.0", "to 1.5.x or 2.0.x first"),
            ("c:1.9.0", "c:3.0.0", "to 1.10.x or 2.0.x first"),
        ];
        for (from, to, why) in refused {
            let err = check_path(&[from], to).unwrap_err();
            assert!(err.contains(why), "{from} -> {to}: {err}");
            assert!(err.contains(SKIP_VERSION_CHECK), "{err}");
        }
    }

    #[test]
    fn every_running_image_must_allow_the_target() {
        // Mid-roll from 1.4 to 1.5: on to 1.5.x is fine, 1.6 is not yet.
        assert_eq!(check_path(&["c:1.4.2", "c:1.5.0"], "c:1.5.1"), Ok(()));
        assert!(check_path(&["c:1.4.2", "c:1.5.0"], "c:1.6.0").is_err());
    }
}
