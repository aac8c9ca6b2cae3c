//! What the durable audit log costs a kill: the records of a decision and its request
//! written, then the sync that must finish before the request goes to execd.
//!
//! ```text
//! cargo bench -p oomd-service --bench audit
//! ```
//!
//! The file is in `$OOMD_AUDIT_BENCH_DIR` (default: the system's temporary directory): the
//! figure is the file system's `fdatasync`, so measure on the disk oomd will log to.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use memstat::SubjectId;
use oomd::{Event, EventKind, KillReason, TerminationMode, Tick, Ticket};
use oomd_service::audit::{AuditLog, DEFAULT_MAX_BYTES};

fn kill_records(c: &mut Criterion) {
    let dir = std::env::var_os("OOMD_AUDIT_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("oomd-audit-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut log, _) =
        AuditLog::open(&dir.join("audit.jsonl"), DEFAULT_MAX_BYTES).expect("an audit log to bench");
    let subject = SubjectId::from_name("hog");
    let mut seq = 0;
    let mut group = c.benchmark_group("audit");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("decision_request_and_sync", |b| {
        b.iter(|| {
            let decided = Event {
                seq,
                tick: Tick(seq),
                kind: EventKind::KillDecided {
                    subject,
                    bytes: 33_555_263,
                    reason: KillReason::HardLimit,
                },
            };
            let requested = Event {
                seq: seq + 1,
                tick: Tick(seq),
                kind: EventKind::KillRequested {
                    subject,
                    ticket: Ticket(seq as u32),
                    mode: TerminationMode::Graceful,
                },
            };
            seq += 2;
            log.append_event(&decided, &(), seq);
            log.append_event(&requested, &(), seq);
            log.sync();
        });
    });
    group.bench_function("decision_and_request_unsynced", |b| {
        b.iter(|| {
            let decided = Event {
                seq,
                tick: Tick(seq),
                kind: EventKind::KillDecided {
                    subject,
                    bytes: 33_555_263,
                    reason: KillReason::HardLimit,
                },
            };
            seq += 1;
            log.append_event(&decided, &(), seq);
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, kill_records);
criterion_main!(benches);
