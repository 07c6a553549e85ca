// Does the Node vhost-user disk (`npm run vhost-user-blk`) allocate per request? A bounded
// version of `npm run bench:vhost-user -- --heap` (bench/vhost-user/heap.ts): the disk runs in
// a child process with --heap-stats, vu-loadgen (bench/vhost-user, built here if needed) drives
// REQUESTS verified requests at queue depth 32 (70% reads), and the disk's own heap-stats lines
// give, over the steady state (from 10% of the requests to the last line before the frontend
// leaves): V8 heap bytes allocated per request, scavenges per million requests, and the heap
// after a forced GC at both ends.
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import test from 'ava'

import { cargoBuild } from '../bench/vhost-user/build'
import { type HeapWindow, steadyState } from '../bench/vhost-user/heap'
import type { HeapSample } from '../examples/virtio-blk/heap-stats'

const root = path.resolve(__dirname, '..')
const REQUESTS = 400_000
/** Heap growth after GC allowed over the steady state: a leak of a few bytes per request exceeds it. */
const MAX_GROWTH = 512 * 1024
/** The goal (issue 13): nothing allocated per request; a few bytes allow the per-kick work at qd 32. */
const MAX_BYTES_PER_REQUEST = 64
const MAX_SCAVENGES_PER_MILLION = 20

interface Measured {
  steady: HeapWindow
  fallback: boolean
  requests: number
}

async function measure(): Promise<Measured> {
  cargoBuild()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vu-heap-test-'))
  const disk = path.join(dir, 'disk.img')
  fs.writeFileSync(disk, '')
  fs.truncateSync(disk, 16 << 20)
  const socket = path.join(dir, 'blk.sock')
  const samples: HeapSample[] = []
  const log: string[] = []
  let child: ChildProcess | null = null
  try {
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'examples/virtio-blk/vhost-user.ts',
        '--socket',
        socket,
        '--disk',
        disk,
        '--heap-stats',
        '0.25',
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let partial = ''
    child.stdout!.on('data', (b: Buffer) => {
      const lines = (partial + b.toString()).split('\n')
      partial = lines.pop()!
      for (const l of lines) {
        if (l.startsWith('heap-stats ')) samples.push(JSON.parse(l.slice(11)))
        else log.push(l)
      }
    })
    child.stderr!.on('data', (b: Buffer) => log.push(b.toString()))
    const deadline = Date.now() + 60_000
    while (!log.some((l) => l.startsWith('listening on'))) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`the disk did not start:\n${log.join('\n')}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    const loadgen = path.join(root, 'target', 'release', 'vu-loadgen')
    const args = ['--socket', socket, '--qd', '32', '--queues', '1', '--rw', 'rw70', '--requests', `${REQUESTS}`]
    const lg = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const c = spawn(loadgen, [...args, '--mem', '64', '--json'], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      c.stderr.on('data', (b) => (stderr += b))
      c.on('close', (status) => resolve({ status, stderr }))
    })
    if (lg.status !== 0) throw new Error(`vu-loadgen exit ${lg.status}: ${lg.stderr}\n${log.join('\n')}`)
    const end = Date.now() + 10_000
    while (!samples.some((s) => s.event === 'disconnect') && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20))
    const { steady, fallback, whole } = steadyState(samples)
    return { steady, fallback, requests: whole.requests }
  } finally {
    if (child !== null && child.exitCode === null) {
      const gone = new Promise((r) => child!.once('exit', r))
      child.kill('SIGTERM')
      await gone
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

let run: Promise<Measured> | null = null
const measured = () => (run ??= measure())

const describe = (w: HeapWindow) =>
  `${w.requests} requests: ${w.bytesPerRequest.toFixed(1)} B/request, ${w.scavengesPerMillion.toFixed(1)} ` +
  `scavenges/M, heap after GC ${w.heapStart} -> ${w.heapEnd} B`

test('vhost-user disk: the heap after GC stays flat over the steady state (no per-request leak)', async (t) => {
  t.timeout(300_000)
  const m = await measured()
  t.log(describe(m.steady))
  t.true(m.requests >= REQUESTS, 'every request was served')
  t.false(m.fallback, 'the run gave interval lines within its steady state')
  t.true(m.steady.requests >= REQUESTS / 4, 'the steady state covers a good part of the run')
  t.true(m.steady.heapEnd - m.steady.heapStart < MAX_GROWTH, describe(m.steady))
})

// The disk serves IN/OUT/FLUSH/GET_ID on the batch path (ChainBatch I/O, no object per
// request): what is left is per kick (the QueueGuard and its WeakRef), a few bytes per
// request at qd 32 (README, "Allocation per request of the Node disk").
test('vhost-user disk: nothing allocated per request in the steady state', async (t) => {
  t.timeout(300_000)
  const m = await measured()
  t.log(describe(m.steady))
  t.true(m.steady.bytesPerRequest <= MAX_BYTES_PER_REQUEST, describe(m.steady))
  t.true(m.steady.scavengesPerMillion <= MAX_SCAVENGES_PER_MILLION, describe(m.steady))
})
