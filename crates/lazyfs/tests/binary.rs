//! The `conclave-lazyfs` binary as a test script uses it: mount, write,
//! `ctl power-cut`, SIGTERM (a clean unmount); and SIGKILL of LazyFS itself,
//! whose dead mount the next start detaches.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_conclave-lazyfs");

struct Dirs {
    _root: tempfile::TempDir,
    backing: PathBuf,
    mount: PathBuf,
    socket: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let backing = root.path().join("backing");
    let mount = root.path().join("mnt");
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mount).unwrap();
    Dirs {
        socket: root.path().join("control.sock"),
        backing,
        mount,
        _root: root,
    }
}

/// A running `conclave-lazyfs`; stopped (and its mount detached) if a
/// test fails while it runs, so no process or mount is left behind.
struct Running {
    child: Child,
    mount: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = lazyfs::recover_stale_mount(&self.mount);
        }
    }
}

fn start(d: &Dirs) -> Running {
    // A killed LazyFS leaves its socket file behind; wait for the new one.
    let _ = std::fs::remove_file(&d.socket);
    let mut child = Command::new(BIN)
        .arg("--backing")
        .arg(&d.backing)
        .arg("--mount")
        .arg(&d.mount)
        .arg("--control")
        .arg(&d.socket)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The control socket appears once the filesystem is mounted.
    while !d.socket.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("conclave-lazyfs exited early: {status}");
        }
        assert!(Instant::now() < deadline, "conclave-lazyfs did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Running {
        child,
        mount: d.mount.clone(),
    }
}

fn ctl(socket: &Path, command: &str) -> String {
    let out = Command::new(BIN)
        .arg("ctl")
        .arg(socket)
        .arg(command)
        .output()
        .unwrap();
    assert!(out.status.success(), "ctl {command}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn signal(running: &Running, signal: Signal) {
    kill(
        Pid::from_raw(i32::try_from(running.child.id()).unwrap()),
        signal,
    )
    .unwrap();
}

fn wait(running: &mut Running) -> ExitStatus {
    let child = &mut running.child;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "conclave-lazyfs did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}

/// Mounting works here at all (else the test is skipped, as in `common`).
fn fuse_works() -> bool {
    common::mount().is_some()
}

#[test]
fn power_cut_through_ctl_then_a_clean_unmount_on_sigterm() {
    if !fuse_works() {
        return;
    }
    let d = dirs();
    let mut child = start(&d);
    let path = d.mount.join("f");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"kept").unwrap();
    file.sync_data().unwrap();
    file.write_all(b" dropped").unwrap();
    drop(file);

    assert_eq!(
        ctl(&d.socket, "power-cut").trim(),
        "power-cut bytes=8 files=1"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"kept");
    assert!(ctl(&d.socket, "stats").contains("power_cuts=1"));

    std::fs::write(d.mount.join("g"), b"written back at unmount").unwrap();
    signal(&child, Signal::SIGTERM);
    assert!(wait(&mut child).success());
    assert!(!is_mounted(&d.mount), "unmounted");
    assert!(!d.socket.exists(), "socket removed");
    assert_eq!(
        std::fs::read(d.backing.join("g")).unwrap(),
        b"written back at unmount"
    );
}

#[test]
fn a_killed_lazyfs_loses_its_cache_and_the_next_start_detaches_the_dead_mount() {
    if !fuse_works() {
        return;
    }
    let d = dirs();
    let mut child = start(&d);
    let path = d.mount.join("f");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"kept").unwrap();
    file.sync_data().unwrap();
    file.write_all(b" lost").unwrap();
    drop(file);

    signal(&child, Signal::SIGKILL);
    wait(&mut child);
    let dead = std::fs::metadata(&d.mount).unwrap_err();
    assert_eq!(dead.raw_os_error(), Some(libc::ENOTCONN), "a dead mount");

    let mut child = start(&d);
    assert_eq!(std::fs::read(&path).unwrap(), b"kept");
    signal(&child, Signal::SIGINT);
    assert!(wait(&mut child).success());
    assert!(!is_mounted(&d.mount));
}
