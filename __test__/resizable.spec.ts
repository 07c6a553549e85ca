// Resizable ArrayBuffers cannot back guest memory: they can shrink under it.
// Whatever JavaScript reports about a buffer (an own `buffer` property on the
// view, a patched ArrayBuffer.prototype.resizable, a buffer without a
// prototype), the native side learns the real backing store and its length
// through Node-API before every access: the buffer is refused at creation, or
// every call after resize(0) is refused with DetachedBuffer. On the old code
// the native side touched the released pages (SIGSEGV in availIdx()). Each
// case runs in a child process (fixtures/resizable.js).
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'

const fixture = path.join(__dirname, 'fixtures', 'resizable.js')

for (const kind of ['own-buffer-property', 'patched-prototype', 'null-prototype']) {
  test(`a resizable ArrayBuffer behind guest memory (${kind}) is refused or safe after resize(0)`, (t) => {
    const r = spawnSync(process.execPath, [fixture, kind], { encoding: 'utf8', timeout: 60_000 })
    t.is(r.signal, null, r.stderr)
    t.is(r.status, 0, r.stdout + r.stderr)
    const report = JSON.parse(r.stdout) as Record<string, unknown>
    if ('refused' in report) {
      t.true(typeof report.refused === 'string' && /^[A-Za-z_]+$/.test(report.refused), String(report.refused))
      return
    }
    // Before: the queue works (the own-property case shows JavaScript writing elsewhere than
    // the native side reads, which is the liar's own problem, not a memory-safety one).
    t.is(typeof report.before, 'number')
    t.deepEqual(report.shrunk, {
      availIdx: 'DetachedBuffer',
      isValid: 'DetachedBuffer',
      popChains: 'DetachedBuffer',
      addUsed: 'DetachedBuffer',
      needsNotification: 'DetachedBuffer',
      enableNotification: 'DetachedBuffer',
    })
    // Grown back, the same pages are usable again (zero-filled by the resize).
    t.is(report.regrown, 0)
  })
}
