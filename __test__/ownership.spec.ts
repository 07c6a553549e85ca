// Who owns guest memory (README, threat model): all of it is memory V8 owns,
// so an ArrayBuffer transferred to another thread takes its memory along, and
// the memory stays valid for as long as any ArrayBuffer anywhere holds it,
// whatever thread ends first. Each case runs in a child process
// (fixtures/worker-transfer.js): on the old native allocations the worker's
// teardown freed memory the main thread then used (a crash, or reads of freed heap).
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'

const fixture = path.join(__dirname, 'fixtures', 'worker-transfer.js')
const hasTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function'

function run(how: string, mode: string) {
  const r = spawnSync(process.execPath, ['--expose-gc', fixture, how, mode], { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

for (const how of ['finish', 'terminate']) {
  for (const mode of ['postMessage', 'transfer']) {
    // ArrayBuffer.prototype.transfer arrived in Node 22; the postMessage cases cover Node 20.
    const define = mode === 'transfer' && !hasTransfer ? test.skip : test
    const title =
      mode === 'transfer'
        ? `fromRanges memory moved by buffer.transfer() from a worker that then ${how === 'finish' ? 'finishes' : 'is terminated'} stays valid (needs ArrayBuffer.prototype.transfer: Node >= 22)`
        : `fromRanges memory posted (transfer list) from a worker that then ${how === 'finish' ? 'finishes' : 'is terminated'} stays valid`
    define(title, (t) => {
      const r = run(how, mode)
      t.is(r.signal, null, r.stderr)
      t.is(r.status, 0, r.stdout + r.stderr)
      t.deepEqual(JSON.parse(r.stdout), {
        workerError: 'DetachedBuffer',
        length: 64 << 20,
        pattern: true,
        filled: true,
        popped: [true, true],
        used: [true, 32],
      })
    })
  }
}

test('a fromRanges region V8 cannot allocate is InvalidRegion, not a crash', (t) => {
  // Node 20 caps a Buffer at 4 GiB, later Nodes at 2^53 - 1 bytes; neither allocates 4 PiB.
  const { GuestMemory } = require('..') as typeof import('..')
  const err = t.throws(() => GuestMemory.fromRanges([[0, 2 ** 52]]), { code: 'InvalidRegion' })
  t.regex(err?.message ?? '', /^region 0: /)
})
