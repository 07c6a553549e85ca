// A vhost-user backend keeps the process alive only while it listens: after close(), or
// when the worker thread holding it ends, the process exits by itself.
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import test from 'ava'

const fixture = path.join(__dirname, 'fixtures', 'vhost-user-exit.ts')
const onLinux = process.platform === 'linux' ? test : test.skip

function run(mode: string) {
  return spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fixture, mode], {
    encoding: 'utf8',
    timeout: 30_000,
  })
}

onLinux('after close() (with a frontend connected and a ring running) the process exits by itself', (t) => {
  const r = run('close')
  t.is(r.error, undefined, 'no timeout')
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /closed \d+/)
})

onLinux('a worker that ends with its backend still listening: the worker and the process exit', (t) => {
  const r = run('worker')
  t.is(r.error, undefined, 'no timeout')
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /worker exited 0/)
})

onLinux('a view of frontend memory posted from a worker stays usable after the worker and its backend end', (t) => {
  const r = run('transfer')
  t.is(r.error, undefined, 'no timeout')
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /worker exited 0/)
  // Node 20 copies the view (usable memory after the worker); newer Node refuses the transfer.
  t.regex(r.stdout, /view after the worker 65536 7|transfer refused: DataCloneError/)
})
