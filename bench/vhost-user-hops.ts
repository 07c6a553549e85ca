// The hop costs of the vhost-user data path (issue 12, "Measured"), on the testing addon:
//   kick → handler, same thread: the frontend writes the kick eventfd from the main thread and
//     yields to the loop: the backend's whole software path (uv_poll wakes the loop, the
//     eventfd is drained, the dispatcher calls device.kick) plus one epoll return.
//   kick → handler, another thread: the frontend's own thread writes the eventfd while the main
//     loop sleeps in epoll, as QEMU's vCPU thread would: adds the cross-CPU wake-up.
//   notify → call eventfd written: the time `vring.notify()` takes (the eventfd write is done
//     when it returns).
// Usage: node scripts/build.js --testing && node --import tsx bench/vhost-user-hops.ts [rounds]
// First: points the loader at the testing addon (the frontend's exports) before anything loads it.
import '../__test__/helpers/testing-addon'
import * as os from 'node:os'
import * as path from 'node:path'
import { TestFrontend } from '../__test__/helpers/vhost-frontend'
import { splitQueueLayout } from '../src/driver/index'
import { VhostUserBackend, type Vring } from '../src/vhost-user/index'

const rounds = Number(process.argv[2] ?? 20000)
let handlerAt = 0n
let notifyNs: number[] = []
let wake: (() => void) | null = null

const quantile = (a: number[], p: number): string => {
  const s = [...a].sort((x, y) => x - y)
  return (s[Math.min(s.length - 1, Math.floor(p * s.length))]! / 1000).toFixed(1)
}
const report = (name: string, all: number[]): void => {
  const a = all.slice(Math.floor(all.length / 10)) // warm-up
  console.log(
    `${name}: median ${quantile(a, 0.5)} us, p90 ${quantile(a, 0.9)} us, p99 ${quantile(a, 0.99)} us (${a.length} rounds)`,
  )
}

async function main(): Promise<void> {
  const socketPath = path.join(os.tmpdir(), `vq-hops-${process.pid}.sock`)
  const device = {
    features: 0n,
    numQueues: 1,
    maxQueueSize: 256,
    config: () => new Uint8Array(0),
    kick(vring: Vring) {
      handlerAt = process.hrtime.bigint()
      vring.notify()
      notifyNs.push(Number(process.hrtime.bigint() - handlerAt))
      wake?.()
    },
  }
  const backend = new VhostUserBackend({ socketPath, device })
  await backend.listen()
  const fe = new TestFrontend(socketPath, 0x100000, 1)
  await fe.setup((1n << 64n) - 1n)
  await fe.startVring(0, splitQueueLayout(0x1000, 256))
  const ran = () =>
    new Promise<void>((r) => {
      wake = r
    })

  const same: number[] = []
  for (let i = 0; i < rounds; i++) {
    const done = ran()
    const t0 = process.hrtime.bigint()
    fe.kick(0)
    await done
    same.push(Number(handlerAt - t0))
  }
  const notifySame = notifyNs
  notifyNs = []
  const other: number[] = []
  for (let i = 0; i < Math.min(rounds, 2000); i++) {
    const done = ran()
    const at = await fe.timedKick(0)
    await done
    other.push(Number(handlerAt - at))
  }
  fe.calls(0)
  await fe.disconnect()
  await backend.close()
  report('kick -> handler (kick from the same thread)', same)
  report('kick -> handler (kick from another thread, loop asleep)', other)
  report('notify -> call eventfd written', notifySame)
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
