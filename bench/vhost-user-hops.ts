// The hop costs of the vhost-user data path (issue 12, "Measured"), on the testing addon:
//   kick → handler: from the frontend writing the kick eventfd to the device's kick handler
//     running (uv_poll wakes the main loop, the eventfd is drained, the dispatcher calls
//     device.kick). The frontend writes the eventfd from this same thread and then yields to
//     the loop, so this is the backend's whole software path plus one epoll wake-up, without
//     a cross-CPU wake-up (QEMU kicks from another process).
//   notify → call eventfd written: the time `vring.notify()` takes (the eventfd write is done
//     when it returns).
// Usage: node scripts/build.js --testing && node --import tsx bench/vhost-user-hops.ts [rounds]
import * as os from 'node:os'
import * as path from 'node:path'
import { splitQueueLayout } from '../src/driver/index'
import { VhostUserBackend, type Vring } from '../src/vhost-user/index'
import { TestFrontend } from '../__test__/helpers/vhost-frontend'

require('../scripts/testing-addon.js').useTestingAddon()

const rounds = Number(process.argv[2] ?? 20000)
const kickNs: number[] = []
const notifyNs: number[] = []
let t0 = 0n
let wake: (() => void) | null = null

async function main(): Promise<void> {
  const socketPath = path.join(os.tmpdir(), `vq-hops-${process.pid}.sock`)
  const device = {
    features: 0n,
    numQueues: 1,
    maxQueueSize: 256,
    config: () => new Uint8Array(0),
    kick(vring: Vring) {
      const t1 = process.hrtime.bigint()
      kickNs.push(Number(t1 - t0))
      vring.notify()
      notifyNs.push(Number(process.hrtime.bigint() - t1))
      wake?.()
    },
  }
  const backend = new VhostUserBackend({ socketPath, device })
  await backend.listen()
  const fe = new TestFrontend(socketPath, 0x100000, 1)
  await fe.setup((1n << 64n) - 1n)
  await fe.startVring(0, splitQueueLayout(0x1000, 256))
  for (let i = 0; i < rounds; i++) {
    const ran = new Promise<void>((r) => {
      wake = r
    })
    t0 = process.hrtime.bigint()
    fe.kick(0)
    await ran
  }
  fe.calls(0)
  await fe.disconnect()
  await backend.close()
  const q = (a: number[], p: number) => {
    const s = [...a].sort((x, y) => x - y)
    return (s[Math.min(s.length - 1, Math.floor(p * s.length))]! / 1000).toFixed(1)
  }
  const skip = Math.floor(rounds / 10) // warm-up
  for (const [name, a] of [
    ['kick -> handler', kickNs.slice(skip)],
    ['notify -> call eventfd written', notifyNs.slice(skip)],
  ] as const) {
    console.log(`${name}: median ${q(a, 0.5)} us, p90 ${q(a, 0.9)} us, p99 ${q(a, 0.99)} us (${a.length} rounds)`)
  }
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
