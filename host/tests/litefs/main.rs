//! LiteFS support against real parts: OFD locks on real files, SQLite through a real two-node
//! LiteFS cluster on FUSE (`caje_testkit::litefs`), and caje nodes on that cluster (`nodes.rs`).

mod fleet;
mod nodes;

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use caje::litefs::{
    Database, Error, HALT_BYTE, Halt, HaltStep, Lag, LitefsConfig, Role, fetch_info, lock_path,
};
use caje_testkit::litefs::{Cluster, wait_until};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, SqliteConnection};

/// Bound on anything that waits for replication or for LiteFS to change state.
const SETTLE: Duration = Duration::from_secs(30);
const HALT_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// The lock itself, on ordinary files (the kernel's OFD locks stand in for LiteFS's handler).

fn plain_lock_file(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("manifest.db-lock");
    File::create(&path).unwrap();
    path
}

/// Whether another open file description sees a write lock on `byte` (`F_OFD_GETLK`).
fn locked_for_others(path: &Path, byte: i64) -> bool {
    let file = File::options().read(true).write(true).open(path).unwrap();
    let mut probe = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: byte,
        l_len: 1,
        l_pid: 0,
    };
    fcntl(&file, FcntlArg::F_OFD_GETLK(&mut probe)).unwrap();
    probe.l_type == libc::F_WRLCK as libc::c_short
}

async fn eventually<T, Fut: Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> Fut,
) -> T {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {SETTLE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn halt_is_a_write_lock_on_byte_72_seen_by_other_descriptors_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = plain_lock_file(&dir);
    let halt = Halt::acquire(&path, HALT_TIMEOUT).await.unwrap();
    assert_eq!(halt.lock_path(), path);
    assert!(locked_for_others(&path, HALT_BYTE));
    assert!(!locked_for_others(&path, HALT_BYTE - 1));
    assert!(!locked_for_others(&path, HALT_BYTE + 1));
    halt.release().await.unwrap();
    assert!(!locked_for_others(&path, HALT_BYTE));
}

#[tokio::test]
async fn dropping_the_guard_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = plain_lock_file(&dir);
    let halt = Halt::acquire(&path, HALT_TIMEOUT).await.unwrap();
    assert!(locked_for_others(&path, HALT_BYTE));
    drop(halt);
    let file = path.as_path();
    eventually("the dropped guard to unlock", || async move {
        (!locked_for_others(file, HALT_BYTE)).then_some(())
    })
    .await;
    // Released for this process too: the next caller gets its turn.
    Halt::acquire(&path, HALT_TIMEOUT)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acquirers_in_one_process_queue_and_waiting_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = plain_lock_file(&dir);
    let first = Halt::acquire(&path, HALT_TIMEOUT).await.unwrap();

    let second = tokio::spawn({
        let path = path.clone();
        async move { Halt::acquire(&path, HALT_TIMEOUT).await }
    });
    let impatient = Halt::acquire(&path, Duration::from_millis(300)).await;
    match impatient {
        Err(Error::HaltTimeout { ref path, waited }) => {
            assert!(path.ends_with("manifest.db-lock"));
            assert!(waited >= Duration::from_millis(300));
        }
        other => panic!("expected a timeout while the lock is held, got {other:?}"),
    }
    let message = impatient.unwrap_err().to_string();
    assert!(message.contains("halt_timeout"), "{message}");
    assert!(
        !second.is_finished(),
        "the second caller got HALT while the first held it"
    );

    first.release().await.unwrap();
    let second = tokio::time::timeout(SETTLE, second)
        .await
        .expect("the second caller never got its turn")
        .unwrap()
        .unwrap();
    assert!(locked_for_others(&path, HALT_BYTE));
    second.release().await.unwrap();
    assert!(!locked_for_others(&path, HALT_BYTE));
}

#[tokio::test]
async fn a_missing_lock_file_is_a_clear_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_path(&dir.path().join("absent.db"));
    let err = Halt::acquire(&path, HALT_TIMEOUT).await.unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT));
    assert!(
        matches!(
            err,
            Error::Halt {
                step: HaltStep::Open,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("absent.db-lock") && message.contains("does not exist"),
        "{message}"
    );
    assert!(message.contains("open (create) the database"), "{message}");
    assert!(!path.exists(), "acquire must not create {}", path.display());
}

#[tokio::test]
async fn databases_off_litefs_are_plain_unless_litefs_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("manifest.db");
    assert!(
        Database::detect(&db, &LitefsConfig::default())
            .unwrap()
            .is_none()
    );
    let required = LitefsConfig {
        require: true,
        ..LitefsConfig::default()
    };
    let err = Database::detect(&db, &required).unwrap_err();
    assert!(matches!(err, Error::NotOnLitefs { .. }), "{err:?}");
    assert!(err.to_string().contains("require = false"), "{err}");
}

#[test]
fn shipped_litefs_yml_execs_caje_without_a_shell() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../litefs.yml"))
        .unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(doc["fuse"]["dir"].as_str(), Some("/litefs"));
    assert_eq!(doc["data"]["dir"].as_str(), Some("/data/litefs"));
    let commands = doc["exec"].as_sequence().expect("exec is a list");
    let cmd = commands.last().unwrap()["cmd"].as_str().unwrap();
    // LiteFS splits `cmd` into argv itself; shell syntax would reach caje as arguments.
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(argv[..2], ["caje", "serve"], "{cmd}");
    for token in &argv {
        assert!(
            !token.contains(['|', '&', ';', '$', '>', '<', '=']),
            "shell syntax in exec: {cmd}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite through a real LiteFS cluster.
//
// The manifest runs SQLite on LiteFS in rollback-journal mode (`journal_mode = DELETE`): in WAL
// mode LiteFS 0.5 cannot report a failed remote commit to SQLite (see the last test), and a
// primary's readers and writers stall ~10 s behind a replica's HALT instead of honouring
// busy_timeout. Tests that compare both modes run each.

const TABLE: &str = "CREATE TABLE entries (key TEXT PRIMARY KEY, node TEXT NOT NULL)";
const JOURNAL: SqliteJournalMode = SqliteJournalMode::Delete;

fn options(path: &Path, mode: SqliteJournalMode) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(mode)
        .busy_timeout(Duration::from_secs(5))
}

async fn connect(path: &Path, mode: SqliteJournalMode) -> SqliteConnection {
    SqliteConnection::connect_with(&options(path, mode))
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Creates `name` with the `entries` table on the primary and waits until the replica has it.
async fn create_replicated(cluster: &Cluster, name: &str, mode: SqliteJournalMode) {
    let create = options(&cluster.primary().db_path(name), mode).create_if_missing(true);
    let mut primary = SqliteConnection::connect_with(&create).await.unwrap();
    sqlx::query(TABLE).execute(&mut primary).await.unwrap();
    primary.close().await.unwrap();
    let replica = cluster.replica().db_path(name);
    let replica = replica.as_path();
    eventually("the new database to reach the replica", || async move {
        let mut conn = SqliteConnection::connect_with(&options(replica, mode))
            .await
            .ok()?;
        let tables: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'entries'")
                .fetch_one(&mut conn)
                .await
                .ok()?;
        (tables == 1).then_some(())
    })
    .await;
}

async fn count_keys(path: &Path, mode: SqliteJournalMode, like: &str) -> i64 {
    let mut conn = connect(path, mode).await;
    sqlx::query_scalar("SELECT count(*) FROM entries WHERE key LIKE ?")
        .bind(like)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

async fn wait_for_count(path: &Path, mode: SqliteJournalMode, like: &str, expected: i64) {
    let what = format!("{expected} rows like {like:?} in {}", path.display());
    eventually(&what, || async move {
        (count_keys(path, mode, like).await == expected).then_some(())
    })
    .await;
}

async fn insert(conn: &mut SqliteConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO entries (key, node) VALUES (?, 'b') \
         ON CONFLICT (key) DO UPDATE SET node = excluded.node",
    )
    .bind(key)
    .execute(conn)
    .await
    .map(drop)
}

fn detect(path: &Path, http_addr: Option<&str>) -> Database {
    let config = LitefsConfig {
        require: true,
        http_addr: http_addr.map(str::to_owned),
        ..LitefsConfig::default()
    };
    Database::detect(path, &config)
        .unwrap()
        .expect("the cluster's mounts are LiteFS mounts")
}

#[tokio::test]
async fn cluster_roles_lag_and_info() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (a, b) = (cluster.primary(), cluster.replica());

    for http in [None, Some(a.http_addr())] {
        let primary = detect(&a.db_path("x.db"), http);
        assert_eq!(primary.role().await.unwrap(), Role::Primary);
        assert_eq!(primary.lag().await.unwrap(), Lag::Behind(Duration::ZERO));
    }
    for http in [None, Some(b.http_addr())] {
        let replica = detect(&b.db_path("x.db"), http);
        assert_eq!(replica.mount().dir(), b.fuse_dir());
        assert_eq!(replica.path(), b.db_path("x.db"));
        let role = replica.role().await.unwrap();
        assert_eq!(
            role,
            Role::Replica {
                primary: "node-a".into()
            }
        );
        assert!(!role.is_primary());
        let replica = &replica;
        let lag = eventually("the replica's first sync", || async move {
            match replica.lag().await.unwrap() {
                Lag::Behind(lag) => Some(lag),
                Lag::NotReplicated => None,
            }
        })
        .await;
        assert!(lag < SETTLE, "a connected replica reports {lag:?} of lag");
    }

    let info = fetch_info(a.http_addr(), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(info.is_primary && info.candidate);
    assert_eq!(info.primary.hostname, "node-a");
    let info = fetch_info(b.http_addr(), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(!info.is_primary && !info.candidate);
    assert_eq!(info.primary.hostname, "node-a");
    assert!(!info.cluster_id.is_empty());
}

#[tokio::test]
async fn replica_writes_fail_without_halt_and_replicate_with_it() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let modes = [
        (
            "delete.db",
            SqliteJournalMode::Delete,
            "attempt to write a readonly database",
        ),
        ("wal.db", SqliteJournalMode::Wal, "disk I/O error"),
    ];
    for (name, mode, refusal) in modes {
        create_replicated(&cluster, name, mode).await;
        let (on_a, on_b) = (
            cluster.primary().db_path(name),
            cluster.replica().db_path(name),
        );
        let mut replica = connect(&on_b, mode).await;

        let err = insert(&mut replica, "unhalted")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(refusal), "{mode:?} without HALT: {err}");

        let litefs = detect(&on_b, None);
        let halt = litefs.halt().await.unwrap();
        insert(&mut replica, "halted").await.unwrap();
        halt.release().await.unwrap();

        wait_for_count(&on_a, mode, "halted", 1).await;
        wait_for_count(&on_b, mode, "halted", 1).await;
        assert_eq!(count_keys(&on_a, mode, "unhalted").await, 0);
        // The connection that was refused is still usable.
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM entries")
            .fetch_one(&mut replica)
            .await
            .unwrap();
        assert_eq!(rows, 1, "{mode:?}");
    }
}

#[tokio::test]
async fn one_halt_covers_a_whole_transaction_and_is_a_no_op_on_the_primary() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    create_replicated(&cluster, "batch.db", JOURNAL).await;
    let on_b = cluster.replica().db_path("batch.db");
    let litefs = detect(&on_b, None);
    let mut replica = connect(&on_b, JOURNAL).await;

    let halt = litefs.halt().await.unwrap();
    let mut tx = replica.begin().await.unwrap();
    for i in 0..500 {
        insert(&mut tx, &format!("batch-{i:04}")).await.unwrap();
    }
    tx.commit().await.unwrap();
    halt.release().await.unwrap();

    let on_a = cluster.primary().db_path("batch.db");
    wait_for_count(&on_a, JOURNAL, "batch-%", 500).await;
    wait_for_count(&on_b, JOURNAL, "batch-%", 500).await;

    let halt = detect(&on_a, None).halt().await.unwrap();
    let mut primary = connect(&on_a, JOURNAL).await;
    insert(&mut primary, "primary-under-halt").await.unwrap();
    halt.release().await.unwrap();
    wait_for_count(&on_b, JOURNAL, "primary-under-halt", 1).await;
}

#[tokio::test]
async fn a_replica_creates_a_database_under_halt() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let on_b = cluster.replica().db_path("new.db");
    let litefs = detect(&on_b, None);
    let err = litefs.halt().await.unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT), "{err}");
    assert!(
        err.to_string().contains("open (create) the database"),
        "{err}"
    );
    assert!(!on_b.exists() && !lock_path(&on_b).exists());

    // LiteFS lets a replica create the empty file; its content needs HALT like any write.
    let create = options(&on_b, JOURNAL).create_if_missing(true);
    let mut replica = SqliteConnection::connect_with(&create).await.unwrap();
    assert!(lock_path(&on_b).exists());
    let err = sqlx::query(TABLE).execute(&mut replica).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("attempt to write a readonly database"),
        "{err}"
    );

    let halt = litefs.halt().await.unwrap();
    sqlx::query(TABLE).execute(&mut replica).await.unwrap();
    insert(&mut replica, "from-b").await.unwrap();
    halt.release().await.unwrap();
    let on_a = cluster.primary().db_path("new.db");
    wait_until(
        "the replica's new database to reach the primary",
        SETTLE,
        || on_a.exists(),
    );
    wait_for_count(&on_a, JOURNAL, "from-b", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_guard_lets_the_primary_write_again() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    // What the primary's own writer sees while a replica holds HALT.
    let modes = [
        ("delete.db", SqliteJournalMode::Delete, "database is locked"),
        ("wal.db", SqliteJournalMode::Wal, "locking protocol"),
    ];
    for (name, mode, refusal) in modes {
        create_replicated(&cluster, name, mode).await;
        let on_a = cluster.primary().db_path(name);
        let litefs = detect(&cluster.replica().db_path(name), None);
        let impatient = options(&on_a, mode).busy_timeout(Duration::from_millis(200));
        let mut primary = SqliteConnection::connect_with(&impatient).await.unwrap();

        let halt = litefs.halt().await.unwrap();
        // Spawning a process used to release HALT (the child closes its inherited copy of the
        // descriptor at exec); the holder thread's private descriptor table prevents that.
        std::process::Command::new("true").status().unwrap();
        let err = insert(&mut primary, "while-halted")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(refusal),
            "{mode:?} primary write during a replica's HALT: {err}"
        );
        drop(halt);

        eventually(
            "the primary to write again after the guard was dropped",
            || {
                let impatient = impatient.clone();
                async move {
                    let mut primary = SqliteConnection::connect_with(&impatient).await.ok()?;
                    insert(&mut primary, "after-drop").await.ok()
                }
            },
        )
        .await;
        assert_eq!(count_keys(&on_a, mode, "while-halted").await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_restart_under_halt_is_a_clear_error_then_writes_work_again() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    create_replicated(&cluster, "restart.db", JOURNAL).await;
    let on_a = cluster.primary().db_path("restart.db");
    let on_b = cluster.replica().db_path("restart.db");
    let litefs = detect(&on_b, Some(cluster.replica().http_addr()));
    let mut replica = connect(&on_b, JOURNAL).await;

    let held = litefs.halt().await.unwrap();
    let waiting = tokio::spawn({
        let litefs = litefs.clone();
        async move { litefs.halt().await }
    });
    cluster.stop_primary();
    assert_eq!(litefs.role().await.unwrap(), Role::Disconnected);

    let err = insert(&mut replica, "lost").await.unwrap_err().to_string();
    assert!(
        err.contains("disk I/O error"),
        "write under HALT without a primary: {err}"
    );
    let err = held.release().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Halt {
                step: HaltStep::Unlock,
                errno: Errno::EIO,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("primary is unreachable"), "{err}");
    let err = waiting.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Halt {
                step: HaltStep::Lock,
                errno: Errno::EIO,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("check that the primary is up"),
        "{err}"
    );

    cluster.start_primary();
    assert_eq!(
        litefs.role().await.unwrap(),
        Role::Replica {
            primary: "node-a".into()
        }
    );
    let halt = litefs.halt().await.unwrap();
    insert(&mut replica, "recovered").await.unwrap();
    halt.release().await.unwrap();
    wait_for_count(&on_a, JOURNAL, "recovered", 1).await;
    assert_eq!(count_keys(&on_a, JOURNAL, "lost").await, 0);
    assert_eq!(
        count_keys(&on_b, JOURNAL, "lost").await,
        0,
        "the failed write was rolled back"
    );
}

/// Why the manifest does not use WAL on LiteFS: LiteFS 0.5 commits a replica's WAL transaction
/// when SQLite drops the WAL write lock, too late to fail it. With the primary gone under HALT,
/// SQLite reports success for a write that never reaches the primary, and the replica's LiteFS
/// exits (status 99), taking its mount down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_wal_mode_losing_the_primary_under_halt_crashes_the_replica() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let mode = SqliteJournalMode::Wal;
    create_replicated(&cluster, "wal.db", mode).await;
    let on_b = cluster.replica().db_path("wal.db");
    let mut replica = connect(&on_b, mode).await;

    let halt = detect(&on_b, None).halt().await.unwrap();
    cluster.stop_primary();
    insert(&mut replica, "lost")
        .await
        .expect("in WAL mode SQLite cannot see the failed remote commit");
    let status = cluster.wait_for_replica_exit();
    assert_eq!(status.code(), Some(99), "{}", cluster.replica().log_tail());
    assert!(
        cluster
            .replica()
            .log_tail()
            .contains("fatal error occurred while committing WAL")
    );
    drop(halt);
}
