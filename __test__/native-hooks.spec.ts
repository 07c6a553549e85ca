// The call area (crate/src/js/state/call_area.rs) and forced panics.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import type { NativeBinding } from '../src/native'
import { offer, smallRig } from './helpers/fuzz-rig'

const root = path.join(__dirname, '..')

test('the call area is poisoned after each read: a call that did not write it is refused', (t) => {
  // The same module instance as the public API (lib/), whose guard.addUsed writes the area.
  const { native, CALL_AREA } = require(path.join(root, 'lib', 'native.js')) as {
    native: NativeBinding
    CALL_AREA: Float64Array | null
  }
  t.truthy(CALL_AREA, 'this Node allows external ArrayBuffers')
  const r = smallRig()
  offer(r, 2)
  r.guard.addUsed(0, 5)
  t.is(r.guard.usedIdx(), 1)
  t.true(
    CALL_AREA!.slice(0, 3).every((x) => Number.isNaN(x)),
    'the slots read by the call are NaN afterwards',
  )
  // Called again without writing the area: refused, and nothing is added.
  const err = t.throws(() => native.addUsedArea(), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.regex(err?.message ?? '', /"queue".*received NaN/)
  t.is(r.guard.usedIdx(), 1)
  // The next real call writes the area again and works.
  r.guard.addUsed(1, 6)
  t.is(r.guard.usedIdx(), 2)
})

test('a forced panic prints nothing (the test checks the error), even with RUST_BACKTRACE=1', (t) => {
  const script = `
    const { loadBinding } = require(${JSON.stringify(path.join(root, 'lib', 'binding.js'))})
    require(${JSON.stringify(path.join(root, 'lib', 'index.js'))})
    const codes = []
    for (let i = 0; i < 3; i++) {
      try { loadBinding().forcePanicForTesting() } catch (e) { codes.push(e.code) }
    }
    console.log(JSON.stringify(codes))`
  const r = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: { ...process.env, RUST_BACKTRACE: '1' },
    timeout: 30_000,
  })
  t.is(r.status, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), ['Panic', 'Panic', 'Panic'])
  t.is(r.stderr, '')
})
