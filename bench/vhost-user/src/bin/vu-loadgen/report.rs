//! One sweep point's figures, printed as a table row or JSON, and CPU time from /proc.

use std::fmt::Write;

pub struct Point {
    pub label: String,
    pub queues: u16,
    pub qd: u16,
    pub bs: u32,
    pub mode: String,
    pub ops: u64,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub backend_cores: Option<f64>,
    pub loadgen_cores: f64,
    pub kicks_per_req: f64,
    pub waits_per_req: f64,
}

impl Point {
    pub fn iops(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    pub fn mib_s(&self) -> f64 {
        self.iops() * f64::from(self.bs) / (1024.0 * 1024.0)
    }
}

pub const HEADER: &str = "backend          queues   qd     bs  rw         IOPS    MiB/s  p50 µs  p99 µs p99.9 µs  backend CPUs  loadgen CPUs  kicks/req  wakeups/req";

pub fn row(p: &Point) -> String {
    let cores = p
        .backend_cores
        .map_or("-".to_string(), |c| format!("{c:.2}"));
    format!(
        "{:<16} {:>6} {:>4} {:>6}  {:<6} {:>10.0} {:>8.1} {:>7.1} {:>7.1} {:>8.1}  {:>12}  {:>12.2}  {:>9.3}  {:>11.3}",
        p.label,
        p.queues,
        p.qd,
        p.bs,
        p.mode,
        p.iops(),
        p.mib_s(),
        p.p50_us,
        p.p99_us,
        p.p999_us,
        cores,
        p.loadgen_cores,
        p.kicks_per_req,
        p.waits_per_req
    )
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".into()
    }
}

fn string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn json(label: &str, seed: u64, capacity: u64, points: &[Point]) -> String {
    let mut s = format!(
        "{{\"label\":{},\"seed\":{seed},\"capacityBytes\":{capacity},\"cpus\":{},\"points\":[",
        string(label),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"queues\":{},\"qd\":{},\"bs\":{},\"rw\":{},\"requests\":{},\"seconds\":{},\"iops\":{},\"mibPerSec\":{},\"p50Us\":{},\"p99Us\":{},\"p999Us\":{},\"backendCores\":{},\"loadgenCores\":{},\"kicksPerRequest\":{},\"wakeupsPerRequest\":{}}}",
            p.queues,
            p.qd,
            p.bs,
            string(&p.mode),
            p.ops,
            num(p.seconds),
            num(p.iops()),
            num(p.mib_s()),
            num(p.p50_us),
            num(p.p99_us),
            num(p.p999_us),
            p.backend_cores.map_or("null".into(), num),
            num(p.loadgen_cores),
            num(p.kicks_per_req),
            num(p.waits_per_req)
        );
    }
    s.push_str("]}");
    s
}

/// utime + stime of a process in seconds, from /proc/PID/stat (`None` when it is gone).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks / if hz > 0 { hz as f64 } else { 100.0 })
}
