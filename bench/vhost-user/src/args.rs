//! Command lines of both programs.

use std::path::PathBuf;

/// What the load generator issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    Write,
    /// Reads and writes, this percentage of them reads.
    Mixed(u8),
}

impl Mode {
    pub fn name(self) -> String {
        match self {
            Mode::Read => "read".into(),
            Mode::Write => "write".into(),
            Mode::Mixed(p) => format!("rw{p}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadgenOptions {
    pub socket: PathBuf,
    /// Queue depths per queue, one sweep point each.
    pub qd: Vec<u16>,
    /// Queue counts, one sweep point each.
    pub queues: Vec<u16>,
    pub bs: u32,
    pub mode: Mode,
    /// Timed seconds per point (ignored with `requests`).
    pub seconds: f64,
    /// Untimed seconds before the timed part of each point.
    pub warmup: f64,
    /// A fixed number of verified requests per point instead of a duration.
    pub requests: Option<u64>,
    pub queue_size: u16,
    pub mem_mib: u64,
    /// Bytes of the disk used, from offset 0 (default: all of it).
    pub span: Option<u64>,
    pub seed: u64,
    pub prefill: bool,
    pub json: bool,
    /// A backend process whose CPU time is reported per point.
    pub backend_pid: Option<u32>,
    /// A name for the backend in the output.
    pub label: String,
    /// Offer VIRTIO_F_INDIRECT_DESC (off: three ring descriptors per request).
    pub indirect: bool,
}

pub const LOADGEN_USAGE: &str = "\
usage: vu-loadgen --socket PATH [options]
  --qd 1,8,32,128     queue depth per queue (sweep; default 1,8,32,128)
  --queues 1,2        queues (sweep; default 1)
  --bs BYTES          request size, a multiple of 512 (default 4096; k/K and m/M suffixes)
  --rw read|write|rwN reads, writes, or a mix with N% reads (default read)
  --seconds S         timed seconds per point (default 3)
  --warmup S          untimed seconds before each point (default 0.5)
  --requests N        N verified requests per point instead of --seconds (no warm-up)
  --queue-size N      ring size (default 256)
  --mem MIB           guest memory (memfd) in MiB (default 256)
  --span BYTES        use only the first BYTES of the disk (default all)
  --seed N            pattern seed (default: from the clock)
  --no-prefill        the disk already holds this seed's pattern (an earlier run with --seed)
  --backend-pid PID   report that process's CPU use over each timed part
  --label NAME        backend name in the output
  --no-indirect       do not negotiate indirect descriptors (3 ring descriptors per request)
  --json              one JSON object on stdout instead of the table";

fn number(flag: &str, v: &str) -> Result<u64, String> {
    let (digits, mult) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1024),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1024 * 1024),
        Some(b'g' | b'G') => (&v[..v.len() - 1], 1024 * 1024 * 1024),
        _ => (v, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{flag}: not a number: {v:?}"))
}

fn seconds(flag: &str, v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!("{flag}: not a duration in seconds: {v:?}")),
    }
}

fn list(flag: &str, v: &str, max: u64) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for part in v.split(',') {
        let n = number(flag, part.trim())?;
        if n == 0 || n > max {
            return Err(format!("{flag}: {n} is out of range 1..={max}"));
        }
        out.push(n as u16);
    }
    Ok(out)
}

/// Splits `--flag=value` and `--flag value` forms; returns (flag, value) pairs and flags alone.
fn pairs(args: Vec<String>, booleans: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if !a.starts_with("--") {
            return Err(format!("unexpected argument {a:?}"));
        }
        if let Some((f, v)) = a.split_once('=') {
            out.push((f.to_string(), v.to_string()));
        } else if booleans.contains(&a.as_str()) {
            out.push((a, String::new()));
        } else {
            let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            out.push((a, v));
        }
    }
    Ok(out)
}

impl LoadgenOptions {
    /// Parses the arguments after the program name. `Err` carries a message for the user.
    pub fn parse(args: Vec<String>) -> Result<Self, String> {
        let mut o = LoadgenOptions {
            socket: PathBuf::new(),
            qd: vec![1, 8, 32, 128],
            queues: vec![1],
            bs: 4096,
            mode: Mode::Read,
            seconds: 3.0,
            warmup: 0.5,
            requests: None,
            queue_size: 256,
            mem_mib: 256,
            span: None,
            seed: 0,
            prefill: true,
            json: false,
            backend_pid: None,
            label: "backend".into(),
            indirect: true,
        };
        let mut seed = None;
        for (f, v) in pairs(args, &["--json", "--no-prefill", "--no-indirect", "--help"])? {
            match f.as_str() {
                "--socket" => o.socket = PathBuf::from(v),
                "--qd" => o.qd = list(&f, &v, 32768)?,
                "--queues" => o.queues = list(&f, &v, 64)?,
                "--bs" => {
                    let n = number(&f, &v)?;
                    if n == 0 || n % 512 != 0 || n > 1 << 24 {
                        return Err(format!("--bs: {n} is not a multiple of 512 in 512..=16M"));
                    }
                    o.bs = n as u32;
                }
                "--rw" => {
                    o.mode = match v.as_str() {
                        "read" => Mode::Read,
                        "write" => Mode::Write,
                        _ => match v.strip_prefix("rw").map(|p| p.parse::<u8>()) {
                            Some(Ok(p)) if p <= 100 => Mode::Mixed(p),
                            _ => {
                                return Err(format!(
                                    "--rw: expected read, write or rwN (N% reads), not {v:?}"
                                ))
                            }
                        },
                    }
                }
                "--seconds" => o.seconds = seconds(&f, &v)?,
                "--warmup" => o.warmup = seconds(&f, &v)?,
                "--requests" => o.requests = Some(number(&f, &v)?.max(1)),
                "--queue-size" => {
                    let n = number(&f, &v)?;
                    if !n.is_power_of_two() || n > 32768 {
                        return Err(format!(
                            "--queue-size: {n} is not a power of two up to 32768"
                        ));
                    }
                    o.queue_size = n as u16;
                }
                "--mem" => o.mem_mib = number(&f, &v)?.clamp(1, 1 << 20),
                "--span" => o.span = Some(number(&f, &v)?),
                "--seed" => seed = Some(number(&f, &v)?),
                "--no-prefill" => o.prefill = false,
                "--no-indirect" => o.indirect = false,
                "--json" => o.json = true,
                "--backend-pid" => o.backend_pid = Some(number(&f, &v)? as u32),
                "--label" => o.label = v,
                "--help" => return Err(LOADGEN_USAGE.into()),
                _ => return Err(format!("unknown option {f}\n{LOADGEN_USAGE}")),
            }
        }
        if o.socket.as_os_str().is_empty() {
            return Err(format!("--socket is required\n{LOADGEN_USAGE}"));
        }
        if !o.prefill && seed.is_none() {
            return Err("--no-prefill needs the --seed the disk was filled with".into());
        }
        o.seed = seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
        Ok(o)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NativeOptions {
    pub socket: PathBuf,
    pub disk: PathBuf,
    pub queues: u16,
    pub queue_size: u16,
}

pub const NATIVE_USAGE: &str = "\
usage: vu-blk-native --socket PATH --disk FILE [--queues N] [--queue-size N]";

impl NativeOptions {
    pub fn parse(args: Vec<String>) -> Result<Self, String> {
        let mut o = NativeOptions {
            socket: PathBuf::new(),
            disk: PathBuf::new(),
            queues: 1,
            queue_size: 1024,
        };
        for (f, v) in pairs(args, &["--help"])? {
            match f.as_str() {
                "--socket" => o.socket = PathBuf::from(v),
                "--disk" => o.disk = PathBuf::from(v),
                "--queues" => o.queues = list(&f, &v, 64)?[0],
                "--queue-size" => o.queue_size = list(&f, &v, 32768)?[0],
                "--help" => return Err(NATIVE_USAGE.into()),
                _ => return Err(format!("unknown option {f}\n{NATIVE_USAGE}")),
            }
        }
        if o.socket.as_os_str().is_empty() || o.disk.as_os_str().is_empty() {
            return Err(format!("--socket and --disk are required\n{NATIVE_USAGE}"));
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn loadgen_defaults_and_sweep_lists() {
        let o = LoadgenOptions::parse(args(
            "--socket /s --qd 1,32 --queues=1,2 --bs 64k --rw rw70",
        ))
        .unwrap();
        assert_eq!(o.socket, PathBuf::from("/s"));
        assert_eq!(o.qd, vec![1, 32]);
        assert_eq!(o.queues, vec![1, 2]);
        assert_eq!(o.bs, 65536);
        assert_eq!(o.mode, Mode::Mixed(70));
        assert_eq!(o.queue_size, 256);
        assert!(o.prefill && !o.json && o.requests.is_none());
    }

    #[test]
    fn loadgen_refuses_bad_values() {
        for bad in [
            "--qd 1",
            "--socket /s --qd 0",
            "--socket /s --bs 1000",
            "--socket /s --rw rw101",
            "--socket /s --rw sideways",
            "--socket /s --queue-size 100",
            "--socket /s --seconds -1",
            "--socket /s --no-prefill",
            "--socket /s --frobnicate 1",
            "--socket",
            "/s",
        ] {
            assert!(LoadgenOptions::parse(args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn loadgen_flags_and_seed() {
        let o = LoadgenOptions::parse(args(
            "--socket /s --json --no-prefill --seed 9 --requests 2k --backend-pid 42",
        ))
        .unwrap();
        assert!(o.json && !o.prefill);
        assert_eq!(o.seed, 9);
        assert_eq!(o.requests, Some(2048));
        assert_eq!(o.backend_pid, Some(42));
    }

    #[test]
    fn native_options() {
        let o = NativeOptions::parse(args("--socket /s --disk /d --queues 2")).unwrap();
        assert_eq!((o.queues, o.queue_size), (2, 1024));
        assert!(NativeOptions::parse(args("--socket /s")).is_err());
        assert!(NativeOptions::parse(args("--socket /s --disk /d --queues 0")).is_err());
    }
}
