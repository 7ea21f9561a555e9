//! Facts about this process and machine, standing in for the JVM's: the
//! `envi` list (`Environment.list`), the `os.*` and `user.*` values that
//! `system_properties` reuses, and the file descriptor counts `mntr`
//! reports. Read from `/proc`, the cgroup and the process environment.

use super::VERSION;

/// `envi` (`Environment.list`), with this process's facts in place of the
/// JVM's: `java.*` entries Conclave has no value for are `<NA>`, and the
/// memory lines report the process's resident size (`total`), the memory
/// limit (`max`: the cgroup limit, else the machine's memory) and the
/// machine's available memory (`free`), in MB like ZooKeeper.
pub fn environment() -> Vec<(&'static str, String)> {
    let na = || "<NA>".to_owned();
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| na());
    let proc_text = |p: &str| std::fs::read_to_string(p).map(|h| h.trim().to_owned()).ok();
    let mb = |bytes: Option<u64>| bytes.map_or_else(na, |b| format!("{}MB", b / (1024 * 1024)));
    let (free, max, total) = memory();
    vec![
        ("zookeeper.version", VERSION.to_owned()),
        (
            "host.name",
            proc_text("/proc/sys/kernel/hostname").unwrap_or_else(na),
        ),
        ("java.version", na()),
        ("java.vendor", na()),
        ("java.home", na()),
        ("java.class.path", na()),
        ("java.library.path", na()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", na()),
        ("os.name", java_os_name()),
        ("os.arch", java_os_arch().to_owned()),
        (
            "os.version",
            proc_text("/proc/sys/kernel/osrelease").unwrap_or_else(na),
        ),
        ("user.name", user_name().unwrap_or_else(na)),
        ("user.home", var("HOME")),
        (
            "user.dir",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| na()),
        ),
        ("os.memory.free", mb(free)),
        ("os.memory.max", mb(max)),
        ("os.memory.total", mb(total)),
    ]
}

/// The name of the user running the process (`user.name`): `$USER`, else
/// the process's uid looked up in `/etc/passwd`.
fn user_name() -> Option<String> {
    if let Ok(user) = std::env::var("USER") {
        return Some(user);
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?;
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    })
}

/// `os.name` as Java spells it.
pub fn java_os_name() -> String {
    match std::env::consts::OS {
        "linux" => "Linux".to_owned(),
        "macos" => "Mac OS X".to_owned(),
        "windows" => "Windows".to_owned(),
        "freebsd" => "FreeBSD".to_owned(),
        other => other.to_owned(),
    }
}

/// `os.arch` as Java spells it.
pub fn java_os_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        other => other,
    }
}

/// (available memory, memory limit, resident size) in bytes, from `/proc`
/// and the cgroup.
fn memory() -> (Option<u64>, Option<u64>, Option<u64>) {
    let kb_field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cgroup_limit = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    let machine = kb_field(&meminfo, "MemTotal:");
    let max = match (cgroup_limit, machine) {
        (Some(c), Some(m)) => Some(c.min(m)),
        (c, m) => c.or(m),
    };
    (
        kb_field(&meminfo, "MemAvailable:"),
        max,
        kb_field(&status, "VmRSS:"),
    )
}

/// Open and maximum file descriptors of this process (Linux `/proc`).
pub(super) fn file_descriptors() -> (usize, u64) {
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    (open, max)
}
