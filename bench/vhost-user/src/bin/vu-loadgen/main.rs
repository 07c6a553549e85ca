//! vu-loadgen: a vhost-user-blk frontend that drives a backend as a fast guest driver would,
//! for `npm run bench:vhost-user`. Guest memory is a memfd; each queue has its own thread that
//! keeps `qd` random reads and/or writes in flight, kicks through the kick eventfd and sleeps on
//! the call eventfd, with event idx honoured both ways, and verifies every completion. Before
//! the first point it fills the disk area with a pattern from `--seed` (pattern.rs); reads check
//! it word by word, writes rewrite it. Any verification failure exits with status 1.
//!
//! See `vu-loadgen --help` (args.rs) for the options.

#[cfg(target_os = "linux")]
mod engine;
#[cfg(target_os = "linux")]
mod guest;
#[cfg(target_os = "linux")]
mod report;
#[cfg(target_os = "linux")]
mod session;

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("vu-loadgen runs on Linux only");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
fn main() {
    let o = match vhost_user_bench::args::LoadgenOptions::parse(std::env::args().skip(1).collect())
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(if std::env::args().any(|a| a == "--help") {
                0
            } else {
                2
            });
        }
    };
    if let Err(e) = sweep(&o) {
        eprintln!("vu-loadgen: {e}");
        std::process::exit(1);
    }
}

#[cfg(target_os = "linux")]
fn sweep(o: &vhost_user_bench::args::LoadgenOptions) -> Result<(), String> {
    let mem = guest::GuestMem::new((o.mem_mib << 20) as usize)
        .map_err(|e| format!("guest memory: {e}"))?;
    let mut points = Vec::new();
    let mut prefill = o.prefill;
    let mut capacity = 0;
    if !o.json {
        println!("{}", report::HEADER);
    }
    for &queues in &o.queues {
        for &qd in &o.qd {
            let (p, cap) = point(o, &mem, queues, qd, prefill)?;
            prefill = false;
            capacity = cap;
            if !o.json {
                println!("{}", report::row(&p));
            }
            points.push(p);
        }
    }
    if o.json {
        println!("{}", report::json(&o.label, o.seed, capacity, &points));
    }
    Ok(())
}

/// One sweep point on a fresh connection: handshake, rings, (prefill), warm-up, timed part.
#[cfg(target_os = "linux")]
fn point(
    o: &vhost_user_bench::args::LoadgenOptions,
    mem: &guest::GuestMem,
    queues: u16,
    qd: u16,
    prefill: bool,
) -> Result<(report::Point, u64), String> {
    use engine::{Limit, Req};
    use std::sync::Barrier;
    use std::time::{Duration, Instant};
    use vhost_user_bench::args::Mode;
    use vhost_user_bench::latency::Histogram;
    use vhost_user_bench::rng::Rng;

    let mut s = session::Session::connect(&o.socket, queues, o.indirect, Duration::from_secs(10))?;
    let span = o.span.unwrap_or(s.capacity).min(s.capacity) / u64::from(o.bs) * u64::from(o.bs);
    if span == 0 {
        return Err(format!(
            "the disk ({} bytes) holds no {}-byte block",
            s.capacity, o.bs
        ));
    }
    // Prefill in 64 KiB writes (or --bs if larger), within the device's segment limit.
    let chunk = (64 * 1024)
        .max(o.bs)
        .min(s.size_max.unwrap_or(u32::MAX).max(o.bs))
        / 512
        * 512;
    let buf_len = chunk.max(o.bs);
    if !s.indirect() && u32::from(qd) * 3 > u32::from(o.queue_size) {
        return Err(format!(
            "without indirect descriptors, qd {qd} needs a ring of {} entries",
            qd * 3
        ));
    }
    if u32::from(qd) > u32::from(o.queue_size) {
        return Err(format!("qd {qd} exceeds the ring size {}", o.queue_size));
    }
    s.set_memory(mem)?;
    let mut rings = Vec::new();
    let mut base = 0;
    for i in 0..queues {
        let l = guest::Layout::new(base, o.queue_size, qd, buf_len);
        if l.end > mem.len() as u64 {
            return Err(format!(
                "guest memory too small: {} MiB needed, --mem {}",
                (l.end >> 20) + 1,
                o.mem_mib
            ));
        }
        base = l.end.div_ceil(1 << 20) << 20;
        let q = guest::DriverQueue::new(mem, l, s.indirect(), s.event_idx())
            .map_err(|e| format!("eventfd: {e}"))?;
        s.start_queue(i as usize, &q, mem)?;
        rings.push(q);
    }

    let gate = Barrier::new(queues as usize + 1);
    let backend = o.backend_pid.map(|p| p.to_string());
    let per_queue = o.requests.map(|n| n.div_ceil(u64::from(queues)));
    type QueueResult = Result<(engine::Totals, Histogram), String>;
    let (results, backend_cores, loadgen_cores) = std::thread::scope(|scope| {
        let handles: Vec<_> = rings
            .into_iter()
            .enumerate()
            .map(|(i, mut q)| {
                let gate = &gate;
                scope.spawn(move || {
                    let mut run = || -> Result<(engine::Totals, Histogram), String> {
                        if prefill {
                            let chunks = span.div_ceil(u64::from(chunk));
                            let mut c = i as u64;
                            let mut fill = || {
                                let r = (c < chunks).then(|| Req {
                                    write: true,
                                    offset: c * u64::from(chunk),
                                    len: (span - c * u64::from(chunk)).min(u64::from(chunk)) as u32,
                                });
                                c += u64::from(queues);
                                r
                            };
                            engine::run(&mut q, qd, Limit::Exhaust, o.seed, &mut fill, None)?;
                        }
                        Ok((engine::Totals::default(), Histogram::new()))
                    };
                    let pre = run();
                    // Every queue passes both gates, failed or not, so that none waits forever.
                    gate.wait();
                    // Offsets follow from the seed and the queue: every backend of one comparison
                    // (same --seed) gets the same request stream.
                    let mut rng = Rng::new(o.seed ^ ((i as u64 + 1) << 32));
                    let blocks = span / u64::from(o.bs);
                    let mut random = || {
                        let offset = rng.below(blocks) * u64::from(o.bs);
                        let write = match o.mode {
                            Mode::Read => false,
                            Mode::Write => true,
                            Mode::Mixed(p) => rng.below(100) >= u64::from(p),
                        };
                        Some(Req {
                            write,
                            offset,
                            len: o.bs,
                        })
                    };
                    let warm = match (&pre, per_queue) {
                        (Ok(_), None) if o.warmup > 0.0 => {
                            let end = Instant::now() + Duration::from_secs_f64(o.warmup);
                            engine::run(&mut q, qd, Limit::Until(end), o.seed, &mut random, None)
                                .map(|_| ())
                        }
                        (Ok(_), _) => Ok(()),
                        (Err(e), _) => Err(e.clone()),
                    };
                    gate.wait();
                    warm?;
                    let mut hist = Histogram::new();
                    let limit = match per_queue {
                        Some(n) => Limit::Requests(n),
                        None => Limit::Until(Instant::now() + Duration::from_secs_f64(o.seconds)),
                    };
                    let t = engine::run(&mut q, qd, limit, o.seed, &mut random, Some(&mut hist))
                        .map_err(|e| format!("queue {i}: {e}"))?;
                    Ok((t, hist))
                })
            })
            .collect();
        gate.wait();
        gate.wait();
        let cpu0 = (
            backend.as_deref().and_then(report::cpu_seconds),
            report::cpu_seconds("self"),
            Instant::now(),
        );
        let r: Vec<QueueResult> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("queue thread panicked".into()))
            })
            .collect();
        let cpu1 = (
            backend.as_deref().and_then(report::cpu_seconds),
            report::cpu_seconds("self"),
            Instant::now(),
        );
        let wall = (cpu1.2 - cpu0.2).as_secs_f64();
        // /proc counts CPU time in clock ticks (10 ms): a shorter run gives no figure.
        let enough = wall >= 0.5;
        let backend_cores = match (cpu0.0, cpu1.0) {
            (Some(a), Some(b)) if enough => Some((b - a) / wall),
            _ => None,
        };
        let loadgen_cores = match (cpu0.1, cpu1.1) {
            (Some(a), Some(b)) if enough => (b - a) / wall,
            _ => f64::NAN,
        };
        (r, backend_cores, loadgen_cores)
    });
    let mut hist = Histogram::new();
    let (mut ops, mut seconds, mut kicks, mut waits) = (0, 0f64, 0, 0);
    for (i, r) in results.into_iter().enumerate() {
        let (t, h) = r?;
        // Every request is served: stopping the ring must report where the driver stopped.
        let base = s.stop_queue(i)?;
        if base != u32::from(t.avail_idx) {
            return Err(format!(
                "GET_VRING_BASE (queue {i}): {base}, but the driver made {} available",
                t.avail_idx
            ));
        }
        hist.merge(&h);
        ops += t.ops;
        seconds = seconds.max(t.elapsed.as_secs_f64());
        kicks += t.kicks;
        waits += t.waits;
    }
    let us = |q| hist.quantile(q) as f64 / 1000.0;
    let p = report::Point {
        label: o.label.clone(),
        queues,
        qd,
        bs: o.bs,
        mode: o.mode.name(),
        ops,
        seconds,
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        backend_cores,
        loadgen_cores,
        kicks_per_req: kicks as f64 / ops.max(1) as f64,
        waits_per_req: waits as f64 / ops.max(1) as f64,
    };
    Ok((p, s.capacity))
}
