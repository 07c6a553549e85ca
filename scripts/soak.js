#!/usr/bin/env node
// Soak test: millions of queue operations, printing heap and RSS over time,
// failing if either grows beyond a bound after warm-up.
//
//   node scripts/soak.js                       200k operations (CI)
//   VIRTIO_QUEUE_SOAK_OPS=10000000 node scripts/soak.js
//
// One operation is one chain through the device: offered by a
// SplitQueueDriver, popped (popDescriptorChain, iter or popChains in turn),
// read and written, completed (addUsed or addUsedBatch) and taken back by the
// driver. Woven in: caught errors of every kind (argument, crate, released
// guard, detached memory, panics), state()/fromState snapshots, relocking,
// and guest memories created and dropped (1 MiB fromRanges regions, whose
// native memory only finalizers free, and fromBuffers ones). The event loop
// turns every 1000 operations, as in a real device loop; Node-API runs
// finalizers between turns.
//
// Bounds (MiB, env): VIRTIO_QUEUE_SOAK_HEAP_MIB (default 16) for heapUsed after
// a full GC, VIRTIO_QUEUE_SOAK_RSS_MIB (default 64) for RSS, both measured from
// the end of warm-up (10% of the run) to the end.
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')

if (typeof global.gc !== 'function') {
  // Re-run with --expose-gc so heap figures are taken after a full collection.
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
  })
  process.exit(r.status ?? 1)
}

const root = path.join(__dirname, '..')
// The soak forces panics now and then: it runs on the testing addon (scripts/testing-addon.js).
require(path.join(root, 'scripts', 'testing-addon.js')).useTestingAddon()
const { ChainBatch, GuestMemory, Queue, UsedBatch } = require(root)
const { SplitQueueDriver, setUpDeviceQueue, splitQueueLayout } = require(path.join(root, 'driver'))
const { loadBinding } = require(path.join(root, 'lib', 'binding'))

const OPS = Number(process.env.VIRTIO_QUEUE_SOAK_OPS || 200_000)
const HEAP_MIB = Number(process.env.VIRTIO_QUEUE_SOAK_HEAP_MIB || 16)
const RSS_MIB = Number(process.env.VIRTIO_QUEUE_SOAK_RSS_MIB || 64)
const SIZE = 256
const layout = splitQueueLayout(0x1000, SIZE)
const DATA = 0x10000
const mib = (b) => b / 2 ** 20

function device(memory) {
  const driver = new SplitQueueDriver(memory, { ...layout })
  const queue = new Queue(memory, SIZE)
  const guard = queue.lockWithMemory()
  setUpDeviceQueue(guard, layout)
  return { memory, driver, queue, guard }
}

let rig = device(GuestMemory.fromRanges([[0, 0x40000]]))
const batch = new ChainBatch(64)
const used = new UsedBatch(64)
const payload = Buffer.alloc(64)
let checksum = 0
let errors = 0

/** Offers `n` chains (a 64-byte readable and a 64-byte writable buffer each), then serves them one way or another. */
function serve(n, how) {
  const { memory, driver, guard } = rig
  for (let i = 0; i < n; i++) {
    const a = DATA + 256 * (i % 128)
    payload.writeUInt32LE(i, 0)
    memory.write(a, payload)
    driver.addChain([
      { addr: a, len: 64 },
      { addr: a + 128, len: 64, writable: true },
    ])
  }
  if (how === 0) {
    for (let c = guard.popDescriptorChain(); c; c = guard.popDescriptorChain()) {
      const data = c.reader().read(64)
      checksum = (checksum + data[0]) | 0
      guard.addUsed(c.headIndex, c.writer().write(data))
    }
  } else if (how === 1) {
    for (const c of guard.iter()) {
      const buffers = c.buffers()
      buffers[1].set(buffers[0])
      guard.addUsed(c.headIndex, 64)
    }
  } else {
    for (let k = guard.popChains(batch); k > 0; k = guard.popChains(batch)) {
      for (let i = 0; i < k; i++) {
        const j = batch.descriptorStart(i)
        memory.write(batch.addr(j + 1), memory.slice(batch.addr(j), batch.len(j)))
        used.push(batch.head(i), 64)
      }
      guard.addUsedBatch(used)
    }
  }
  const done = driver.popAllUsed().length
  if (done !== n) throw new Error(`soak: ${done} of ${n} chains came back`)
}

function caught(f) {
  try {
    f()
  } catch (e) {
    if (typeof e.code !== 'string') throw e
    errors++
  }
}

/** Every kind of error, caught. */
function mistakes() {
  const { guard, memory } = rig
  caught(() => guard.setSize(3))
  caught(() => guard.addUsed(SIZE, 0))
  caught(() => guard.setNextUsed('x'))
  caught(() => memory.readU32(1 << 30))
  caught(() => new ChainBatch(0))
  caught(() => GuestMemory.fromRanges([[4, 64]]))
  const ab = new ArrayBuffer(0x1000)
  const m = GuestMemory.fromBuffers([{ guestAddress: 0, buffer: ab }])
  structuredClone(ab, { transfer: [ab] })
  caught(() => m.readU8(0))
  const g = new Queue(m, 16).lockWithMemory()
  g.release()
  caught(() => g.nextAvail())
}

/** Snapshot and restore the queue, and relock it. */
function snapshot() {
  rig.guard.release()
  const queue = Queue.fromState(rig.memory, JSON.parse(JSON.stringify(rig.queue.state())))
  rig = { ...rig, queue, guard: queue.lockWithMemory() }
}

/** Guest memories created and dropped: a 1 MiB native region (every page touched) and a fromBuffers one. */
function churn(i) {
  const m = GuestMemory.fromRanges([[0, 1 << 20]])
  m.regions[0].buffer.fill(i & 0xff)
  const q = new Queue(m, 64).lockWithMemory()
  q.release()
  GuestMemory.fromBuffers([{ guestAddress: 0x1000, buffer: new Uint8Array(0x2000) }])
}

function sample(ops, start) {
  global.gc()
  const u = process.memoryUsage()
  return { ops, secs: (Date.now() - start) / 1000, heap: mib(u.heapUsed), rss: mib(u.rss), external: mib(u.external) }
}

function show(s, label = '') {
  console.log(
    `${String(s.ops).padStart(10)} ops ${s.secs.toFixed(1).padStart(7)} s  heapUsed ${s.heap.toFixed(1).padStart(7)} MiB  ` +
      `RSS ${s.rss.toFixed(1).padStart(7)} MiB  external ${s.external.toFixed(1).padStart(7)} MiB${label}`,
  )
}

async function main() {
  const start = Date.now()
  const warmup = Math.max(20_000, Math.floor(OPS / 10))
  const every = Math.max(50_000, Math.floor(OPS / 20))
  const panics = loadBinding()
  let baseline = null
  let last = null
  let ops = 0
  console.log(`soak: ${OPS} operations, warm-up ${warmup}, bounds heap +${HEAP_MIB} MiB, RSS +${RSS_MIB} MiB`)
  show((last = sample(0, start)), '  (start)')
  while (ops < OPS) {
    const n = 1 + (ops % 64)
    serve(n, Math.floor(ops / 64) % 3)
    ops += n
    if (ops % 97 < n) mistakes()
    if (ops % 5003 < n) snapshot()
    if (ops % 2003 < n) churn(ops)
    if (ops % 1_000_003 < n) caught(() => panics.forcePanicForTesting())
    if (ops % 1000 < n) await new Promise((resolve) => setImmediate(resolve))
    if (baseline === null && ops >= warmup) {
      await new Promise((resolve) => setImmediate(resolve))
      show((baseline = last = sample(ops, start)), '  (end of warm-up: baseline)')
    } else if (Math.floor(ops / every) !== Math.floor((ops - n) / every)) {
      show((last = sample(ops, start)))
    }
  }
  await new Promise((resolve) => setImmediate(resolve))
  const end = sample(ops, start)
  show(end, '  (end)')
  const heap = end.heap - baseline.heap
  const rss = end.rss - baseline.rss
  console.log(
    `soak: ${ops} operations in ${end.secs.toFixed(1)} s (${(ops / end.secs / 1000).toFixed(0)}k/s), ${errors} errors caught, checksum ${checksum}`,
  )
  console.log(
    `soak: after warm-up heapUsed ${baseline.heap.toFixed(1)} -> ${end.heap.toFixed(1)} MiB (${heap >= 0 ? '+' : ''}${heap.toFixed(1)}), RSS ${baseline.rss.toFixed(1)} -> ${end.rss.toFixed(1)} MiB (${rss >= 0 ? '+' : ''}${rss.toFixed(1)})`,
  )
  if (heap > HEAP_MIB || rss > RSS_MIB) {
    console.log(`soak: FAILED: growth beyond the bounds (heap +${HEAP_MIB} MiB, RSS +${RSS_MIB} MiB)`)
    process.exitCode = 1
  } else {
    console.log('soak: OK')
  }
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
