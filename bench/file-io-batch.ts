// What a 4 KiB read costs per operation through FileIoBatch (queued, then one threadpool
// round trip per run of 1, 8 or 32 reads) against the synchronous ChainBatch.readFromFile,
// from a file on tmpfs (/dev/shm: no disk, so this is the path's own cost), interleaved
// round by round so that load affects all alike (Node's own fs.read, one threadpool round
// trip per read, for scale); and the V8 heap bytes a run allocates
// (v8.GCProfiler, as __test__/vhost-user-alloc.spec.ts counts them).
// Usage: node --import tsx bench/file-io-batch.ts [rounds] [dir]   (default: 7, /dev/shm)
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as v8 from 'node:v8'
import * as vm from 'node:vm'

import { setUpDeviceQueue, SplitQueueDriver, splitQueueLayout } from '../src/driver/index'
import { ChainBatch, FileIoBatch, GuestMemory, Queue } from '../src/index'

const rounds = Number(process.argv[2] ?? 7)
const dir = process.argv[3] ?? '/dev/shm'
const OPS = 32 * 1024 // reads per measurement
const CHAINS = 32
const FILE = 1 << 20

const memory = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: new SharedArrayBuffer(1 << 20) }])
const layout = splitQueueLayout(0x1000, 64)
const driver = new SplitQueueDriver(memory, layout)
const guard = new Queue(memory, 64).lockWithMemory()
setUpDeviceQueue(guard, layout, { ready: true })
for (let i = 0; i < CHAINS; i++) driver.addChain([{ addr: 0x10000 + 0x1000 * i, len: 4096, writable: true }])
const batch = new ChainBatch(64)
if (guard.popChains(batch) !== CHAINS) throw new Error('pop')

const file = path.join(fs.mkdtempSync(path.join(dir, 'vq-fio-bench-')), 'f')
fs.writeFileSync(file, Buffer.alloc(FILE, 0x5a))
const fd = fs.openSync(file, 'r')
const io = new FileIoBatch(CHAINS)

function sync(): number {
  const t0 = process.hrtime.bigint()
  for (let k = 0; k < OPS; k++) batch.readFromFile(k % CHAINS, fd, (k * 4096) % FILE)
  return Number(process.hrtime.bigint() - t0) / OPS
}

/** OPS reads with Node's fs.read (its own threadpool round trip per read), one at a time. */
function nodeRead(): Promise<number> {
  const buf = Buffer.alloc(4096)
  return new Promise((resolve) => {
    let k = 0
    const t0 = process.hrtime.bigint()
    const next = (err: Error | null, n?: number): void => {
      if (err || (k > 0 && n !== 4096)) throw err ?? new Error('short read')
      if (k === OPS) return resolve(Number(process.hrtime.bigint() - t0) / OPS)
      fs.read(fd, buf, 0, 4096, (k++ * 4096) % FILE, next)
    }
    next(null)
  })
}

/** JS-thread nanoseconds spent queueing reads and reading their results, per read, of the last batched(). */
let jsThreadNs = 0

/** OPS reads in runs of `size`, each run queued when the last one called back. */
function batched(size: number): Promise<number> {
  return new Promise((resolve) => {
    let k = 0
    let js = 0n
    const t0 = process.hrtime.bigint()
    const next = (): void => {
      if (k >= OPS) {
        const t = process.hrtime.bigint()
        jsThreadNs = Number(js) / OPS
        resolve(Number(t - t0) / OPS)
        return
      }
      const q0 = process.hrtime.bigint()
      for (let i = 0; i < size; i++, k++) io.readFromFile(batch, i, fd, (k * 4096) % FILE)
      io.run(check)
      js += process.hrtime.bigint() - q0
    }
    const check = (b: FileIoBatch): void => {
      const c0 = process.hrtime.bigint()
      for (let i = 0; i < b.length; i++) if (b.result(i) !== 4096) throw new Error('short read')
      js += process.hrtime.bigint() - c0
      next()
    }
    next()
  })
}

/** V8 heap bytes allocated by `runs` runs of `size` reads (after a warm-up). */
async function heapPerRun(size: number, runs: number): Promise<number> {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  await batched(size)
  gc()
  const p = new v8.GCProfiler()
  p.start()
  const before = v8.getHeapStatistics().used_heap_size
  let left = runs
  await new Promise<void>((resolve) => {
    const next = (): void => {
      if (left-- === 0) return resolve()
      for (let i = 0; i < size; i++) io.readFromFile(batch, i, fd, 4096 * i)
      io.run(next)
    }
    next()
  })
  const after = v8.getHeapStatistics().used_heap_size
  let freed = 0
  for (const s of p.stop().statistics)
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize
  return (after - before + freed) / runs
}

async function main(): Promise<void> {
  console.log(
    `load before: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; ${OPS} reads of 4 KiB per figure`,
  )
  const names = ['sync readFromFile', 'FileIoBatch x1', 'FileIoBatch x8', 'FileIoBatch x32', 'fs.read (Node) x1']
  const samples: number[][] = names.map(() => [])
  const js: number[][] = [[], [], []]
  for (let r = 0; r < rounds; r++) {
    samples[0]!.push(sync())
    samples[1]!.push(await batched(1))
    js[0]!.push(jsThreadNs)
    samples[2]!.push(await batched(8))
    js[1]!.push(jsThreadNs)
    samples[3]!.push(await batched(32))
    js[2]!.push(jsThreadNs)
    samples[4]!.push(await nodeRead())
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
  const base = median(samples[0]!)
  names.forEach((n, i) => {
    const m = median(samples[i]!)
    console.log(
      `${n.padEnd(20)} ${m.toFixed(0).padStart(6)} ns/read (median of ${rounds}; x${(m / base).toFixed(2)} sync)`,
    )
  })
  ;[1, 8, 32].forEach((size, i) =>
    console.log(
      `JS thread per read, runs of ${size}: ${median(js[i]!).toFixed(0)} ns (queue + run() + result; the rest is the round trip)`,
    ),
  )
  for (const size of [1, 8, 32]) {
    const bytes = await heapPerRun(size, 20000)
    console.log(`heap per run of ${size}: ${bytes.toFixed(1)} B (${(bytes / size).toFixed(2)} B per read)`)
  }
  console.log(
    `load after: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  fs.rmSync(path.dirname(file), { recursive: true })
}

void main()
