// Views of guest memory a vhost-user frontend shares are external ArrayBuffers over the
// backend's mapping (crate/src/js/vhost_user/views.rs). No route may carry that memory to
// another thread, where it could outlive the mapping: every route is tried on the Node this
// runs on (CI: 20 and 26), and each must copy, refuse, or (ArrayBuffer.prototype.transfer,
// Node >= 22) stay on the same thread. If a new Node starts sharing them across threads,
// this fails, and views.rs needs a way to keep such memory mapped.
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import test from 'ava'

const onLinux = process.platform === 'linux' ? test : test.skip
const major = Number(process.versions.node.split('.')[0])
const hasTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function'

function run(fixture: string, ...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'fixtures', fixture), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  })
}

interface Outcome {
  route: string
  threw?: string
  detached: boolean
  shared: boolean | null
}

onLinux(
  'no route moves a view of frontend memory to another thread: each copies, refuses, or stays on its thread',
  (t) => {
    const r = run('vhost-user-transfer.ts')
    t.is(r.status, 0, r.stderr)
    const outcomes = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Outcome)
    const byRoute = new Map(outcomes.map((o) => [o.route, o]))
    t.is(byRoute.size, 9, r.stdout)
    for (const o of outcomes) t.log(JSON.stringify(o))
    const refusedOrCopied = (route: string) => {
      const o = byRoute.get(route)!
      t.false(o.detached, `${route}: the view stays attached`)
      if (o.threw !== undefined) {
        // Node >= 22: external ArrayBuffers cannot be transferred.
        t.regex(o.threw, /^DataCloneError/, route)
        t.is(o.shared, null, route)
        t.true(major >= 22, `${route} refused on Node ${major}`)
      } else {
        t.is(o.shared, false, `${route}: what arrived is a copy`)
      }
    }
    // With a transfer list: Node 20 copies, later ones refuse.
    for (const route of [
      'worker.postMessage(view, [view])',
      'new Worker({ workerData: view, transferList: [view] })',
      'MessageChannel port.postMessage(view, [view])',
      'structuredClone(view, { transfer: [view] })',
    ]) {
      refusedOrCopied(route)
      t.is(byRoute.get(route)!.threw === undefined, major < 22, `${route}: copied on 20, refused after`)
    }
    // Without one: a copy everywhere.
    for (const route of [
      'worker.postMessage(view) (no transfer list)',
      'structuredClone(view)',
      'v8.deserialize(v8.serialize(view))',
    ]) {
      refusedOrCopied(route)
      t.is(byRoute.get(route)!.threw, undefined, route)
    }
    // ArrayBuffer.prototype.transfer (Node >= 22): the same memory, on the same thread.
    for (const route of ['view.transfer()', 'view.transferToFixedLength()']) {
      const o = byRoute.get(route)!
      t.is(o.threw, undefined, route)
      if (hasTransfer) {
        t.true(o.detached, `${route} detaches the view`)
        t.true(o.shared, `${route} moves the memory itself`)
      } else {
        t.deepEqual([o.detached, o.shared], [false, null], `${route}: absent on Node ${major}`)
      }
    }
  },
)

onLinux("a worker's teardown unmaps the backend's mapping while a view is alive", (t) => {
  const r = run('vhost-user-view-teardown.ts', 'keep')
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /views 65536; mappings 2\n/, 'the frontend and the backend map the memory')
  t.regex(r.stdout, /worker exited 0; mappings with the worker's backend gone: 0\n/)
})

onLinux("a worker's teardown unmaps it too when a view was moved with transfer() (Node >= 22)", (t) => {
  const r = run('vhost-user-view-teardown.ts', 'transfer')
  if (!hasTransfer) {
    // Node 20 has no ArrayBuffer.prototype.transfer: the worker fails at it.
    t.regex(r.stderr, /view\.transfer is not a function/)
    return
  }
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /views 0 65536; mappings 2\n/, 'the view detached, the moved buffer holds the memory')
  t.regex(r.stdout, /worker exited 0; mappings with the worker's backend gone: 0\n/)
})
