// Measures one guest workload against every vhost-user-blk backend and QEMU's
// built-in virtio-blk on the same kind of disk file (issue 12's "Measured"):
// qd1 IOPS of 4 KiB and 64 KiB random reads and writes, and IOPS / MiB/s at a
// higher queue depth (vqload jobs, one synchronous O_DIRECT request each).
//
//   node --import tsx scripts/guest/measure.ts [--seconds 3] [--rounds 1] [--qd 8] [--smp 1]
//        [--targets name,...] [--points '4k randread qd8,...'] [--ref qemu-storage-daemon]
//        [--dir /dev/shm] [--json]
//
// Targets (scripts/guest/targets.ts): every backend in scripts/guest/backends.ts
// (qemu-storage-daemon, aio=threads, cache.direct=off, in its main loop; node),
// qsd-io_uring (the same with aio=io_uring, when built in), and builtin (QEMU's
// virtio-blk, aio=threads, cache=writeback: the host page cache too); when named,
// qsd-iothread, qsd-iothread-poll0 and qsd-iothread-poll256 (the export in an iothread,
// which polls for QEMU's default 32 µs, not at all, or up to 256 µs).
// Ratios are to --ref (qemu-storage-daemon). The disk is a file in /dev/shm, prefilled so reads hit data. Rounds rotate the
// targets (a, b, c, a, b, c, ...) and the table shows each point's median. Under TCG
// the guest is the bottleneck: the figures say whether a backend slows the guest
// down, not how fast the backend could go.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { runGuest } from './qemu'
import { findRig } from './rig'
import { freshDisk, targets } from './targets'
import { arg } from './args'

interface Point {
  name: string
  mode: 'randread' | 'randwrite'
  bs: number
  qd: number
}

const seconds = Number(arg('seconds', '3'))
const rounds = Number(arg('rounds', '1'))
const qd = Number(arg('qd', '8'))
const smp = Number(arg('smp', '1'))
const json = process.argv.includes('--json')
const refName = arg('ref', 'qemu-storage-daemon')
const SPAN = 64 << 20

const allPoints: Point[] = [
  { name: '4k randread qd1', mode: 'randread', bs: 4096, qd: 1 },
  { name: '4k randwrite qd1', mode: 'randwrite', bs: 4096, qd: 1 },
  { name: '64k randread qd1', mode: 'randread', bs: 65536, qd: 1 },
  { name: '64k randwrite qd1', mode: 'randwrite', bs: 65536, qd: 1 },
  { name: `4k randread qd${qd}`, mode: 'randread', bs: 4096, qd },
  { name: `4k randwrite qd${qd}`, mode: 'randwrite', bs: 4096, qd },
  { name: `64k randread qd${qd}`, mode: 'randread', bs: 65536, qd },
  { name: `64k randwrite qd${qd}`, mode: 'randwrite', bs: 65536, qd },
]
// --points '4k randread qd8,4k randwrite qd8': only those.
const pointNames = process.argv.includes('--points') ? arg('points', '').split(',') : null
const points = pointNames ? allPoints.filter((p) => pointNames.includes(p.name)) : allPoints
if (points.length === 0) throw new Error(`--points names none of: ${allPoints.map((p) => p.name).join(', ')}`)

function script(): string {
  const lines = [
    `vqload write --tag prefill --dev $DISK --offset 0 --length ${SPAN} --bs 1M --seed 1 --jobs 2 || exit 1`,
  ]
  for (const p of points) {
    lines.push(
      `vqload bench --tag "${p.name.replace(/ /g, '_')}" --dev $DISK --mode ${p.mode} --bs ${p.bs} --jobs ${p.qd} --seconds ${seconds} --span ${SPAN} || exit 1`,
    )
  }
  return lines.join('\n')
}

/** The median of the finite values (NaN when there are none). */
function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function main(): Promise<void> {
  const { rig, missing } = findRig()
  if (!rig) throw new Error(`real-guest rig not available: ${missing.join('; ')}`)
  const list = targets(rig, process.argv.includes('--targets') ? arg('targets', '').split(',') : null)
  const dir = fs.mkdtempSync(path.join(arg('dir', fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()), 'vq-measure-'))
  // iops[target][point] over rounds
  const iops = new Map<string, Map<string, number[]>>()
  const mibps = new Map<string, Map<string, number[]>>()
  const boots = new Map<string, number[]>()
  const failures: string[] = []
  try {
    for (let round = 0; round < rounds; round++) {
      for (const t of list) {
        const file = freshDisk(dir, SPAN)
        const served = await t.start(file, dir)
        try {
          const r = await runGuest({
            rig,
            disk: served.disk,
            smp,
            script: script(),
            timeoutMs: 60000 + 3000 * points.length * seconds,
          })
          boots.set(t.name, [...(boots.get(t.name) ?? []), r.bootSeconds ?? Number.NaN])
          // A point without a result (the guest hung or failed there) counts as NaN and is reported.
          for (const p of points) {
            const res = r.results.find((x) => x.tag === p.name.replace(/ /g, '_'))
            const put = (m: Map<string, Map<string, number[]>>, v: number) => {
              if (!m.has(t.name)) m.set(t.name, new Map())
              const row = m.get(t.name)!
              row.set(p.name, [...(row.get(p.name) ?? []), v])
            }
            put(iops, res ? Number(res.iops) : Number.NaN)
            put(mibps, res ? Number(res.mibps) : Number.NaN)
          }
          if (r.rc !== 0) {
            const last = r.results.at(-1)?.tag ?? 'boot'
            const why = r.timedOut ? 'the guest stopped making progress and was killed at the timeout' : `rc ${r.rc}`
            const note = `round ${round + 1}: ${t.name} failed after ${last} (${why}; QEMU ${JSON.stringify(r.exit)})`
            failures.push(note)
            process.stderr.write(`${note}\n${r.stderr}${served.output()}`)
            continue
          }
          if (!json) process.stderr.write(`round ${round + 1}/${rounds}: ${t.name} done (${r.wallMs} ms)\n`)
        } finally {
          await served.stop()
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }

  const ref = list.some((t) => t.name === refName) ? refName : list[0].name
  const table = points.map((p) => {
    const row: Record<string, number | string> = { point: p.name }
    for (const t of list) {
      const xs = iops.get(t.name)!.get(p.name)!
      row[`${t.name} IOPS`] = Math.round(median(xs))
      const ok = xs.filter(Number.isFinite)
      row[`${t.name} IOPS min`] = Math.round(Math.min(...ok))
      row[`${t.name} IOPS max`] = Math.round(Math.max(...ok))
      row[`${t.name} failed runs`] = xs.length - ok.length
      row[`${t.name} MiB/s`] = Number(median(mibps.get(t.name)!.get(p.name)!).toFixed(1))
    }
    return row
  })
  const meta = {
    seconds,
    rounds,
    smp,
    qd,
    cpus: os.cpus().length,
    kernel: rig.info.kernelVersion,
    qemu: rig.info.qemu,
    bootSeconds: Object.fromEntries([...boots].map(([k, v]) => [k, median(v)])),
    failures,
  }
  if (json) {
    console.log(JSON.stringify({ meta, table }, null, 2))
    return
  }
  console.log(`guest: ${smp} vCPU (TCG), ${seconds} s per point, median of ${rounds} round(s); host CPUs ${meta.cpus}`)
  console.log(`IOPS${rounds > 1 ? ' (min-max over rounds)' : ''}; MiB/s = IOPS x request size; ratios of medians`)
  const others = list.filter((t) => t.name !== ref)
  const head = ['point', ...list.map((t) => t.name), ...others.map((t) => `${t.name}/${ref}`)]
  const rows = table.map((row) => [
    String(row.point),
    ...list.map((t) => {
      const failed = Number(row[`${t.name} failed runs`])
      const cell =
        rounds > 1
          ? `${row[`${t.name} IOPS`]} (${row[`${t.name} IOPS min`]}-${row[`${t.name} IOPS max`]})`
          : String(row[`${t.name} IOPS`])
      return failed ? `${cell} [${failed} failed]` : cell
    }),
    ...others.map((t) => (Number(row[`${t.name} IOPS`]) / Number(row[`${ref} IOPS`])).toFixed(2)),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
  console.log(fmt(head))
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  for (const r of rows) console.log(fmt(r))
  console.log(`boot to script (guest uptime, s): ${JSON.stringify(meta.bootSeconds)}`)
  for (const f of failures) console.log(`FAILED: ${f} (its later points are left out of the medians)`)
  if (failures.length) process.exitCode = 1
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e)
  process.exit(1)
})
