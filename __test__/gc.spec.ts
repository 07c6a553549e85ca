// Garbage collection: memory JavaScript no longer references stays alive while
// a queue uses it, and is released when nothing does. The checks run in a
// child `node --expose-gc` (fixtures/gc-*.js) so global.gc() is available
// without changing ava's worker arguments.
import test from 'ava'
import { execFile } from 'node:child_process'
import * as path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const fixture = (name: string) => path.join(__dirname, 'fixtures', name)

// biome-ignore lint/suspicious/noExplicitAny: each fixture prints its own JSON report
type ChildReport = Record<string, any>

async function child(name: string, ...args: string[]): Promise<ChildReport> {
  const { stdout } = await run(process.execPath, ['--expose-gc', fixture(name), ...args], {
    timeout: 60_000,
    maxBuffer: 1 << 20,
  })
  return JSON.parse(stdout) as ChildReport
}

test('a queue keeps unreferenced guest memory alive through collections; dropping it frees it', async (t) => {
  const out = await child('gc-keepalive.js')
  t.is(out.error, undefined)
  for (const kind of ['public ArrayBuffer', 'public Buffer']) {
    // Built in a function that returned only the queue, then collected: the chains and their data are intact.
    t.deepEqual(out[kind], { data: [true, true], usedIdx: 2, collectedWhileQueued: false }, kind)
  }
  // Through the raw binding the queue handle is the only reference: the ArrayBuffer
  // behind fromBuffers memory survives, the descriptors read back are the ones written.
  t.deepEqual(out.rawFromBuffers, {
    chains: [
      [0, 0x4000, 32],
      [2, 0x4100, 32],
    ],
    usedIdx: 2,
    collectedWhileQueued: false,
  })
  // fromRanges memory is an ArrayBuffer V8 owns (the README's threat model): the queue keeps it alive too.
  t.deepEqual(out.rawFromRanges, {
    chains: [
      [0, 0x4000, 32],
      [2, 0x4100, 32],
    ],
    usedIdx: 2,
    collectedWhileQueued: false,
  })
  // Once the queues are dropped, the finalizers release the references to the buffers.
  t.deepEqual(out.collectedAfterQueueDropped, [
    'raw fromBuffers',
    'raw fromRanges',
    'public ArrayBuffer',
    'public Buffer',
  ])
  t.deepEqual(out.staleHandles, ['TypeError ERR_INVALID_ARG_TYPE', 'TypeError ERR_INVALID_ARG_TYPE'])
  // A region detached and its new owner collected: every access is DetachedBuffer, none reads freed memory.
  t.deepEqual(out.detached, {
    codes: ['DetachedBuffer', 'DetachedBuffer', 'DetachedBuffer', 'DetachedBuffer'],
    movedCollected: true,
  })
})

test('finalizers release guest memory: 2 x 1000 dropped 1 MiB regions leave RSS bounded', async (t) => {
  const out = await child('gc-release.js', '1000')
  t.is(out.n, 1000)
  const rss = `RSS ${out.before.toFixed(0)} -> peak ${out.peak.toFixed(0)}, after ${out.after.toFixed(0)}, after a second round ${out.afterSecond.toFixed(0)} MiB`
  // 2000 MiB were allocated and touched; without release RSS would grow by about that much.
  t.true(out.peak - out.before < 300, rss)
  // Every region's ArrayBuffer is gone...
  t.true(out.arrayBuffersMiB < 16, `${out.arrayBuffersMiB.toFixed(1)} MiB of ArrayBuffers left`)
  // ...and what the C allocator kept after the first round is reused by the second.
  t.true(out.afterSecond - out.after < 100, rss)
})
