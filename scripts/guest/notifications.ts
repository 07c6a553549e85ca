// Counts, per request, what a guest workload costs on each target, and where the host's
// CPU goes: the guest's kicks (8-byte eventfd writes of QEMU's vCPU thread: under TCG,
// QEMU turns the driver's notify write into a write on the queue's ioeventfd), the
// guest's virtio interrupts (/proc/interrupts in the guest, virtioN-req lines), and the
// CPU time of QEMU's vCPU thread (the guest), of QEMU's main loop (which reads a
// vhost-user call eventfd and injects the interrupt) and of the backend's threads.
// Counted with `perf stat --per-thread` on the syscall tracepoints and task-clock while
// one point runs. To tell a guest that works more per request from one that waits, it also
// gives the vCPU thread's busy share, its share runnable without a host CPU
// (/proc/.../schedstat), its futex calls (waits for QEMU's big lock) and the guest's own
// idle+iowait share (/proc/stat in the guest). --verbose adds every thread's counts (8-byte
// reads and writes: eventfd traffic; epoll/ppoll/io_uring_enter: event-loop waits).
//
//   node --import tsx scripts/guest/notifications.ts [--seconds 3] [--qd 8] [--bs 4096]
//        [--mode randread|randwrite] [--rounds 1] [--targets node,qemu-storage-daemon,...] [--verbose] [--pin]
//
// Needs perf with access to the syscalls tracepoints (root). Targets as in measure.ts;
// rounds rotate them and the summary gives medians.
import { execFileSync, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { startGuest } from './qemu'
import { findRig } from './rig'
import { freshDisk, targets } from './targets'
import { arg } from './args'

const seconds = Number(arg('seconds', '3'))
const qd = Number(arg('qd', '8'))
const bs = Number(arg('bs', '4096'))
const mode = arg('mode', 'randread')
const rounds = Number(arg('rounds', '1'))
const verbose = process.argv.includes('--verbose')
const pin = process.argv.includes('--pin')
const SPAN = 64 << 20

/** Events counted, per thread: [label, event, filter]. */
const EVENTS: [string, string, string | null][] = [
  ['write8', 'syscalls:sys_enter_write', 'count == 8'],
  ['read8', 'syscalls:sys_enter_read', 'count == 8'],
  ['read512', 'syscalls:sys_enter_read', 'count == 512'],
  ['epoll', 'syscalls:sys_enter_epoll_pwait', null],
  ['epoll', 'syscalls:sys_enter_epoll_wait', null],
  ['ppoll', 'syscalls:sys_enter_ppoll', null],
  ['uring', 'syscalls:sys_enter_io_uring_enter', null],
  ['futex', 'syscalls:sys_enter_futex', null],
  ['cpu_us', 'task-clock', null],
]

/** The process ids below `pid` (children, grandchildren...). */
function descendants(pid: number): number[] {
  const out: number[] = []
  let tasks: string[] = []
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const t of tasks) {
    let kids = ''
    try {
      kids = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8')
    } catch {}
    for (const k of kids.split(/\s+/).filter(Boolean).map(Number)) out.push(k, ...descendants(k))
  }
  return out
}

/** Nanoseconds each thread of `pid` has spent runnable but waiting for a CPU (/proc/.../schedstat). */
function runqueueWaits(pid: number): Map<number, number> {
  const out = new Map<number, number>()
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(t), Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[1]))
    } catch {}
  }
  return out
}

/**
 * --pin: QEMU's vCPU thread (its busiest, by run time so far) alone on CPU 0, every other
 * thread of QEMU and of the backend on CPU 1: whether the gap is where the host runs them.
 */
function pinThreads(qemu: number, backend: number | undefined): void {
  const run = (pid: number) =>
    fs.readdirSync(`/proc/${pid}/task`).map((t) => ({
      tid: Number(t),
      ns: Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]),
    }))
  const q = run(qemu).sort((a, b) => b.ns - a.ns)
  const others = [...q.slice(1), ...(backend === undefined ? [] : run(backend))]
  execFileSync('taskset', ['-p', '-c', '0', String(q[0].tid)], { stdio: 'ignore' })
  for (const t of others) execFileSync('taskset', ['-p', '-c', '1', String(t.tid)], { stdio: 'ignore' })
}

/** Starts perf stat on these processes' threads; stop() ends it and returns counts by "process:thread name". */
function perfStat(pids: { label: string; pid: number }[]): { stop(): Promise<Map<string, Record<string, number>>> } {
  const file = path.join(fs.mkdtempSync('/tmp/vq-perf-'), 'stat.txt')
  const args = ['stat', '-x', ';', '--per-thread', '-p', pids.map((p) => p.pid).join(','), '-o', file]
  for (const [, ev, filter] of EVENTS) args.push('-e', ev, ...(filter ? ['--filter', filter] : []))
  const child = spawn('perf', args, { stdio: 'ignore' })
  const tidOf = new Map<number, string>()
  for (const p of pids) {
    for (const t of fs.readdirSync(`/proc/${p.pid}/task`)) {
      const comm = fs.readFileSync(`/proc/${p.pid}/task/${t}/comm`, 'utf8').trim()
      tidOf.set(Number(t), `${p.label}:${Number(t) === p.pid ? 'main' : `${comm}-${t}`}`)
    }
  }
  return {
    async stop() {
      const exited = new Promise((r) => child.on('exit', r))
      child.kill('SIGINT')
      await exited
      const counts = new Map<string, Record<string, number>>()
      for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        const f = line.split(';')
        if (f.length < 4 || line.startsWith('#')) continue
        const m = /^(.*)-(\d+)$/.exec(f[0])
        if (!m || !Number.isFinite(Number(f[1]))) continue
        const who = tidOf.get(Number(m[2])) ?? `?:${m[1]}`
        const label = EVENTS.find(([, ev]) => ev === f[3])![0]
        const row = counts.get(who) ?? {}
        // task-clock is in ms: kept in µs
        row[label] = (row[label] ?? 0) + Number(f[1]) * (label === 'cpu_us' ? 1000 : 1)
        counts.set(who, row)
      }
      fs.rmSync(path.dirname(file), { recursive: true, force: true })
      return counts
    },
  }
}

function script(): string {
  const irqs = `awk '/virtio[0-9]+-req/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts`
  // The guest's CPU ticks idle or waiting for I/O (idle + iowait), and all its ticks.
  const ticks = `awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat`
  // Times the guest's scheduler switched to the idle task (sched_goidle; 0 without schedstats).
  const goidle = `awk '/^cpu0 / { print $5 }' /proc/schedstat 2>/dev/null || echo 0`
  return [
    `vqload write --tag prefill --dev $DISK --offset 0 --length ${SPAN} --bs 1M --seed 1 --jobs 2 || exit 1`,
    'echo 1 >/proc/sys/kernel/sched_schedstats 2>/dev/null',
    'echo VQ-MARK start; read -r _',
    `a=$(${irqs})`,
    `s0=$(${ticks})`,
    `g0=$(${goidle})`,
    `vqload bench --tag point --dev $DISK --mode ${mode} --bs ${bs} --jobs ${qd} --seconds ${seconds} --span ${SPAN} || exit 1`,
    `g1=$(${goidle})`,
    `s1=$(${ticks})`,
    `b=$(${irqs})`,
    'echo VQ-MARK end; read -r _',
    'set -- $s0 $s1',
    'echo "RESULT op=irqs irqs=$((b - a)) waitticks=$(($3 - $1)) ticks=$(($4 - $2)) goidle=$((g1 - g0))"',
  ].join('\n')
}

async function main(): Promise<void> {
  const { rig, missing } = findRig()
  if (!rig) throw new Error(`real-guest rig not available: ${missing.join('; ')}`)
  const list = targets(rig, process.argv.includes('--targets') ? arg('targets', '').split(',') : null)
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'vq-notify-'))
  console.log(`${bs} B ${mode}, ${qd} jobs, ${seconds} s; guest 1 vCPU (TCG); counts per request`)
  const samples = new Map<string, Sample[]>()
  try {
    for (let round = 0; round < rounds * list.length; round++) {
      const t = list[round % list.length]
      const file = freshDisk(dir, SPAN)
      const served = await t.start(file, dir)
      try {
        const guest = startGuest({ rig, disk: served.disk, script: script(), timeoutMs: 60000 + 3000 * seconds })
        let perf: ReturnType<typeof perfStat> | null = null
        let t0 = 0
        let t1 = 0
        let qemu = 0
        let waits0 = new Map<number, number>()
        let waits1 = new Map<number, number>()
        try {
          await guest.waitFor(/^VQ-MARK start/, 60000)
          qemu = descendants(guest.pid!)[0]
          const pids = [{ label: 'qemu', pid: qemu }]
          if (served.pid !== undefined) pids.push({ label: t.name, pid: served.pid })
          perf = perfStat(pids)
          await new Promise((r) => setTimeout(r, 500)) // perf attached
          if (pin) pinThreads(qemu, served.pid)
          waits0 = runqueueWaits(qemu)
          t0 = Date.now()
          guest.send('go')
          await guest.waitFor(/^VQ-MARK end/, 30000 + 3000 * seconds)
          t1 = Date.now()
          waits1 = runqueueWaits(qemu)
        } catch (e) {
          // qemu-storage-daemon's queue sometimes dies at qd 8 (see the README): report, go on.
          console.log(`${t.name}: the guest stopped making progress (${(e as Error).message.split('\n')[0]})`)
          guest.kill()
          await guest.done
          await perf?.stop()
          continue
        }
        const counts = await perf!.stop()
        guest.send('go')
        const r = await guest.done
        const bench = r.results.find((x) => x.tag === 'point')
        const irq = r.results.find((x) => x.op === 'irqs')
        if (!bench || !irq) {
          console.log(`${t.name}: no result (rc ${r.rc}): ${r.serial.slice(-500)}`)
          continue
        }
        const ios = Number(bench.ios)
        const wallS = (t1 - t0) / 1000
        const per = (n: number | undefined) => ((n ?? 0) / ios).toFixed(3)
        // The vCPU is QEMU's busiest thread that is not its main loop.
        const rows = [...counts]
        const vcpuRow = rows
          .filter(([who]) => who.startsWith('qemu:') && who !== 'qemu:main')
          .sort((a, b) => (b[1].cpu_us ?? 0) - (a[1].cpu_us ?? 0))[0]
        const vcpu = vcpuRow?.[1]
        const vcpuTid = Number(/-(\d+)$/.exec(vcpuRow?.[0] ?? '')?.[1])
        const sum = (pre: string, k: string) =>
          rows.filter(([who]) => who.startsWith(pre)).reduce((n, [, row]) => n + (row[k] ?? 0), 0)
        const got: Sample = {
          iops: Number(bench.iops),
          kicks: (vcpu?.write8 ?? 0) / ios,
          vcpuFutex: (vcpu?.futex ?? 0) / ios,
          irqs: Number(irq.irqs) / ios,
          vcpuUs: (vcpu?.cpu_us ?? 0) / ios,
          vcpuBusy: (vcpu?.cpu_us ?? 0) / 1e4 / wallS,
          vcpuStarved: ((waits1.get(vcpuTid) ?? 0) - (waits0.get(vcpuTid) ?? 0)) / 1e7 / wallS,
          guestWaiting: (100 * Number(irq.waitticks)) / Number(irq.ticks),
          guestIdles: Number(irq.goidle) / ios,
          qemuMainUs: (counts.get('qemu:main')?.cpu_us ?? 0) / ios,
          backendUs: sum(`${t.name}:`, 'cpu_us') / ios,
        }
        samples.set(t.name, [...(samples.get(t.name) ?? []), got])
        console.log(
          `${t.name}: ${ios} requests, ${bench.iops} IOPS; per request: kicks ${got.kicks.toFixed(2)}, ` +
            `interrupts ${got.irqs.toFixed(2)}, vCPU ${got.vcpuUs.toFixed(1)} µs; vCPU ${got.vcpuBusy.toFixed(0)}% busy, ` +
            `${got.vcpuStarved.toFixed(0)}% waiting for a host CPU; guest ${got.guestWaiting.toFixed(0)}% idle or in I/O wait, ` +
            `${got.guestIdles.toFixed(2)} idle entries/req`,
        )
        if (!verbose) continue
        for (const [who, row] of [...counts].sort()) {
          const cells = Object.entries(row)
            .filter(([, n]) => n > 0)
            .map(([k, n]) =>
              k === 'cpu_us'
                ? `${(n / ios).toFixed(1)} µs CPU (${(n / 1e4 / wallS).toFixed(0)}% busy)`
                : `${k} ${per(n)}`,
            )
          if (cells.length) console.log(`  ${who}: ${cells.join(', ')}`)
        }
      } finally {
        await served.stop()
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const head = [
    'target',
    'IOPS',
    'kicks/req',
    'interrupts/req',
    'vCPU futex/req',
    'vCPU µs/req',
    'vCPU busy %',
    'vCPU runnable, no CPU %',
    'guest idle+iowait %',
    'guest idle entries/req',
    'QEMU main µs/req',
    'backend µs/req',
  ]
  console.log(`\nmedians over ${rounds} round(s):`)
  console.log(`| ${head.join(' | ')} |`)
  console.log(`|${head.map(() => '---').join('|')}|`)
  for (const [name, xs] of samples) {
    const m = (k: keyof Sample, digits: number) => median(xs.map((x) => x[k])).toFixed(digits)
    const cells = [
      name,
      m('iops', 0),
      m('kicks', 2),
      m('irqs', 2),
      m('vcpuFutex', 2),
      m('vcpuUs', 1),
      m('vcpuBusy', 0),
      m('vcpuStarved', 0),
      m('guestWaiting', 0),
      m('guestIdles', 2),
      m('qemuMainUs', 1),
      m('backendUs', 1),
    ]
    console.log(`| ${cells.join(' | ')} |`)
  }
}

interface Sample {
  iops: number
  kicks: number
  /** futex calls of the vCPU thread (waits for and wake-ups of QEMU's locks, the BQL among them). */
  vcpuFutex: number
  irqs: number
  vcpuUs: number
  vcpuBusy: number
  /** % of the time the vCPU thread was runnable but had no host CPU. */
  vcpuStarved: number
  /** % of the guest's CPU ticks idle or in iowait: all its jobs waiting on the disk. */
  guestWaiting: number
  /** Times per request the guest went idle (halted its vCPU). */
  guestIdles: number
  qemuMainUs: number
  backendUs: number
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e)
  process.exit(1)
})
