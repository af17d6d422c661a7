//! Hot reload (add, replace by rename, delete, half-written files, broken replacements) and
//! the precompiled cache across restarts.

use std::fs::{self, File};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

use caje::policy::{CompiledFrom, ModuleState, Policies, PolicyConfig};

use super::{PolicyDir, TestRequest, component, config, digest_of, status, wait_until};

fn origin_of(policies: &Policies, url: &str) -> String {
    TestRequest::get(url)
        .decide(&policies.chain())
        .unwrap()
        .origin
}

#[test]
fn modules_are_added_replaced_and_deleted_while_running() {
    let dir = PolicyDir::with(&[]);
    let policies = dir.start();
    let in_flight = policies.chain();

    dir.install("10-policy.wasm", "route-by-path");
    wait_until("the new module routes /api", || {
        origin_of(&policies, "https://h/api/x") == "api"
    });
    assert!(
        in_flight.is_empty(),
        "a chain already handed out does not change"
    );
    assert_eq!(
        status(&policies, "10-policy.wasm").digest,
        Some(digest_of("route-by-path"))
    );

    dir.install("10-policy.wasm", "probe");
    wait_until("the replacement serves", || {
        TestRequest::get("https://h/api/x")
            .decide(&policies.chain())
            .unwrap()
            .cache_key
            == ["seen-origin=default"]
    });
    assert_eq!(
        status(&policies, "10-policy.wasm").digest,
        Some(digest_of("probe"))
    );

    fs::remove_file(dir.file("10-policy.wasm")).unwrap();
    wait_until("the deleted module leaves the chain", || {
        policies.chain().is_empty()
    });
    assert!(policies.status().is_empty());
}

#[test]
fn a_half_written_module_is_never_loaded() {
    let dir = PolicyDir::with(&[]);
    let policies = Arc::new(dir.start());
    let wasm = fs::read(component("tag-by-path")).unwrap();
    let full_digest = digest_of("tag-by-path");
    // Pauses shorter than the settle time (the file is waited for) and longer (a prefix is
    // read, found broken and refused): either way no prefix may ever serve.
    for (file, pause) in [
        ("10-slow.wasm", Duration::from_millis(40)),
        ("20-slower.wasm", Duration::from_millis(250)),
    ] {
        let writing = Arc::new(AtomicBool::new(true));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sampler = {
            let (policies, writing, seen) = (
                Arc::clone(&policies),
                Arc::clone(&writing),
                Arc::clone(&seen),
            );
            thread::spawn(move || {
                while writing.load(Ordering::SeqCst) {
                    let sample = policies
                        .status()
                        .into_iter()
                        .find(|status| status.file == file);
                    seen.lock()
                        .unwrap()
                        .extend(sample.map(|status| (status.state, status.digest)));
                    thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let mut out = File::create(dir.file(file)).unwrap();
        for piece in wasm.chunks(wasm.len().div_ceil(4)) {
            out.write_all(piece).unwrap();
            out.flush().unwrap();
            thread::sleep(pause);
        }
        drop(out);
        writing.store(false, Ordering::SeqCst);
        sampler.join().unwrap();
        for (state, digest) in seen.lock().unwrap().iter() {
            assert!(
                *state != ModuleState::Active || digest.as_deref() == Some(full_digest.as_str()),
                "{file} served a partial version: {state:?} {digest:?}"
            );
        }
        wait_until("the complete module serves", || {
            let status = policies
                .status()
                .into_iter()
                .find(|status| status.file == file);
            status
                .is_some_and(|status| status.state == ModuleState::Active && status.error.is_none())
        });
        assert_eq!(status(&policies, file).digest, Some(full_digest.clone()));
    }
}

#[test]
fn a_broken_replacement_keeps_the_previous_version_serving() {
    let dir = PolicyDir::with(&[("10-route.wasm", "route-by-path")]);
    let policies = dir.start();
    let route = digest_of("route-by-path");

    dir.install_bytes("10-route.wasm", b"\0asm broken");
    wait_until("the broken version is refused", || {
        status(&policies, "10-route.wasm").error.is_some()
    });
    let broken = status(&policies, "10-route.wasm");
    assert_eq!(broken.state, ModuleState::Active);
    assert_eq!(
        broken.digest,
        Some(route.clone()),
        "the previous version serves"
    );
    assert!(
        broken
            .error
            .as_deref()
            .unwrap()
            .starts_with("10-route.wasm is not a WebAssembly component")
    );
    assert!(broken.refused_digest.is_some() && broken.refused_digest != broken.digest);
    assert_eq!(origin_of(&policies, "https://h/api/x"), "api");

    dir.install("10-route.wasm", "hostile-trap-always");
    wait_until("the trapping version is refused", || {
        status(&policies, "10-route.wasm")
            .error
            .is_some_and(|error| error.contains("failed its smoke call"))
    });
    assert_eq!(origin_of(&policies, "https://h/api/x"), "api");

    dir.install("10-route.wasm", "route-by-path");
    wait_until("restoring the serving version clears the error", || {
        status(&policies, "10-route.wasm").error.is_none()
    });
    assert_eq!(status(&policies, "10-route.wasm").digest, Some(route));
}

fn cache_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn the_precompiled_cache_is_used_on_restart() {
    let dir = PolicyDir::with(&[("10-route.wasm", "route-by-path")]);
    let own_cache = PolicyConfig {
        precompiled_dir: None,
        ..config()
    };
    let cache_dir = dir.path().with_file_name("policies.precompiled");
    let route = digest_of("route-by-path");
    let first = dir.start_with(&own_cache);
    assert_eq!(
        status(&first, "10-route.wasm").compiled_from,
        Some(CompiledFrom::Source)
    );
    let files = cache_files(&cache_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with(&route["sha256:".len()..]) && files[0].ends_with(".cwasm"),
        "{files:?}"
    );
    drop(first);

    let second = dir.start_with(&own_cache);
    assert_eq!(
        status(&second, "10-route.wasm").compiled_from,
        Some(CompiledFrom::PrecompiledCache)
    );
    assert_eq!(origin_of(&second, "https://h/api/x"), "api");
    drop(second);

    fs::write(cache_dir.join(&files[0]), b"corrupt").unwrap();
    let third = dir.start_with(&own_cache);
    assert_eq!(
        status(&third, "10-route.wasm").compiled_from,
        Some(CompiledFrom::Source),
        "a corrupt entry is rebuilt"
    );
    assert_eq!(origin_of(&third, "https://h/api/x"), "api");
    assert_ne!(fs::read(cache_dir.join(&files[0])).unwrap(), b"corrupt");
}

#[test]
fn precompiled_modules_unused_for_a_week_are_pruned() {
    let dir = PolicyDir::with(&[
        ("10-route.wasm", "route-by-path"),
        ("20-tag.wasm", "tag-by-path"),
    ]);
    let cache_dir = dir.path().with_file_name("own-cache");
    let policies = dir.start_with(&PolicyConfig {
        precompiled_dir: Some(cache_dir.clone()),
        ..config()
    });
    let files = cache_files(&cache_dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let unrelated = cache_dir.join("notes.txt");
    fs::write(&unrelated, "not ours").unwrap();
    let eight_days_ago = SystemTime::now() - Duration::from_secs(8 * 24 * 3600);
    for path in files
        .iter()
        .map(|name| cache_dir.join(name))
        .chain([unrelated.clone()])
    {
        File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(eight_days_ago)
            .unwrap();
    }

    fs::remove_file(dir.file("20-tag.wasm")).unwrap();
    wait_until("the deleted module's entry is pruned", || {
        cache_files(&cache_dir).len() == 2
    });
    let tag = &digest_of("tag-by-path")["sha256:".len()..];
    let route = &digest_of("route-by-path")["sha256:".len()..];
    let left = cache_files(&cache_dir);
    assert!(left.iter().all(|name| !name.starts_with(tag)), "{left:?}");
    assert!(
        left.iter().any(|name| name.starts_with(route)),
        "entries in use stay: {left:?}"
    );
    assert!(unrelated.exists(), "files that are not cache entries stay");
    drop(policies);
}
