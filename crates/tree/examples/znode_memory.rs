//! What a znode costs in resident memory, by part: builds, in a fresh
//! process each, N znodes (children of one parent, as `conclave-loadgen
//! populate` makes them) the way a server loads them (`TreeBuilder`),
//! and the parts alone, and reports the growth of the process's RSS per
//! znode (glibc's malloc, as the server runs).
//!
//!     cargo run --release -p tree --example znode_memory -- [N] [VALUE_SIZE]
//!
//! Parts: a path as a `Box<str>` (the hash map's key); a child's name in its
//! parent's sorted set (`BTreeSet<ChildName>`: inline up to 22 bytes); the
//! rest of the tree without
//! values (the hash map's slot — key header and node pointer, at the map's
//! load factor — and the boxed `Node` with its Stat, ACL pointer, data
//! pointer and children set); the values.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;

use proto::Acl;
use tree::{ChildName, DataTree, Node, StatPersisted, TreeBuilder};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn path(i: usize) -> String {
    format!("/pop/n{i:010}")
}

/// As a store's records are restored: each node with its own ACL list
/// (`world:anyone`, all permissions), as decoded.
fn tree(n: usize, value: Option<usize>) -> DataTree {
    let stat = StatPersisted::created(1, 0, 0);
    let nodes = ["/".to_owned(), "/pop".to_owned()]
        .into_iter()
        .chain((0..n).map(path))
        .map(|p| {
            let data = value.map(|v| vec![7u8; v]);
            (p, Node::new(data, Arc::new(Acl::open_unsafe()), stat))
        });
    let mut builder = TreeBuilder::with_capacity(n + 2);
    for (path, node) in nodes {
        builder.push(path, node).expect("path order");
    }
    builder.finish(std::iter::empty(), 1).expect("a tree")
}

/// Builds one part in this process and prints the RSS it took.
fn measure(part: &str, n: usize, value: usize) {
    let before = rss_bytes();
    let grew = match part {
        "paths" => {
            let paths: Vec<Box<str>> = (0..n).map(|i| path(i).into_boxed_str()).collect();
            let grew = rss_bytes() - before;
            std::hint::black_box(&paths);
            // The Vec's own array is not part of a znode's cost.
            grew - (n * std::mem::size_of::<Box<str>>()) as u64
        }
        "names" => {
            let names: BTreeSet<ChildName> = (0..n)
                .map(|i| ChildName::new(&format!("n{i:010}")))
                .collect();
            let grew = rss_bytes() - before;
            std::hint::black_box(&names);
            grew
        }
        "bare" => {
            let t = tree(n, None);
            let grew = rss_bytes() - before;
            std::hint::black_box(&t);
            grew
        }
        "full" => {
            let t = tree(n, Some(value));
            let grew = rss_bytes() - before;
            std::hint::black_box(&t);
            grew
        }
        other => panic!("unknown part {other}"),
    };
    println!("{grew}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--part") {
        let n = args[3].parse().expect("N");
        let value = args[4].parse().expect("VALUE_SIZE");
        return measure(&args[2], n, value);
    }
    let n: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let value: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let me = std::env::current_exe().expect("this program");
    let part = |name: &str| -> f64 {
        let out = Command::new(&me)
            .args(["--part", name, &n.to_string(), &value.to_string()])
            .output()
            .expect("a measurement");
        let bytes: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("bytes");
        bytes / n as f64
    };
    let (paths, names, bare, full) = (part("paths"), part("names"), part("bare"), part("full"));
    println!(
        "{n} znodes of {value} B (paths like {}, {} B), resident bytes per znode:",
        path(0),
        path(0).len()
    );
    println!();
    println!("| part | bytes per znode |");
    println!("|---|---:|");
    println!("| the path (the map's key: its heap block) | {paths:.0} |");
    println!("| the name in its parent's children (`BTreeSet<ChildName>`) | {names:.0} |");
    println!(
        "| the map's slot (key header {} B, node pointer 8 B; half the slots empty after the map doubles) and the boxed `Node` ({} B: Stat, ACL and data pointers, children set) | {:.0} |",
        std::mem::size_of::<Box<str>>(),
        std::mem::size_of::<Node>(),
        bare - paths - names
    );
    println!(
        "| the value ({value} B and its heap block) | {:.0} |",
        full - bare
    );
    println!("| **the tree** | **{full:.0}** |");
}
