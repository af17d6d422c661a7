//! What the metrics cost a cache hit: the one counter a hit increments
//! (`caje_requests_total{cache="hit"}`, an atomic that a scrape copies into the recorder),
//! beside what the same count cost through the Prometheus recorder's registry and through a
//! recorder that drops everything, measured in the same run. Divide by the CPU time of a hit
//! (`cargo xtask bench` reports requests per CPU-second) for the share of the hit path.
//!
//! `cargo bench -p caje --bench hit_metrics`

use criterion::{Criterion, criterion_group, criterion_main};
use metrics::{NoopRecorder, counter, with_local_recorder};

fn hit_counter(c: &mut Criterion) {
    caje::admin::install_metrics().expect("the Prometheus recorder installs");
    let mut group = c.benchmark_group("hit_counter");
    group.bench_function("atomic", |b| {
        b.iter(|| caje::request_counts::add(caje::request_counts::Counted::Hit))
    });
    group.bench_function("prometheus", |b| {
        b.iter(|| counter!("caje_requests_total", "cache" => "hit").increment(1))
    });
    group.bench_function("no_recorder", |b| {
        with_local_recorder(&NoopRecorder, || {
            b.iter(|| counter!("caje_requests_total", "cache" => "hit").increment(1))
        })
    });
    group.finish();
}

criterion_group!(benches, hit_counter);
criterion_main!(benches);
