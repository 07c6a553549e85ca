// The smallest vhost-user device the lifetime fixtures need: one ring of up to 16, no
// features, 4 bytes of config, kicks ignored; it remembers the ring once the frontend starts
// it, so a fixture can wait for that and then take views of the frontend's memory.
import { splitQueueLayout } from '../../src/driver/index'
import type { VhostUserDevice, Vring } from '../../src/vhost-user/index'
import { TestFrontend } from './vhost-frontend'

export interface IdleDevice extends VhostUserDevice {
  /** The started ring, or null before the frontend starts it. */
  readonly started: Vring | null
}

export function idleDevice(): IdleDevice {
  let started: Vring | null = null
  return {
    features: 0n,
    numQueues: 1,
    maxQueueSize: 16,
    config: () => new Uint8Array(4),
    kick: () => {},
    queueStarted: (v: Vring) => {
      started = v
    },
    get started() {
      return started
    },
  }
}

/**
 * A test frontend connected to the idle device's backend at `socketPath`: set up with every
 * feature offered (64 KiB of guest memory, one ring) and ring 0 started.
 */
export async function idleFrontend(socketPath: string): Promise<TestFrontend> {
  const fe = new TestFrontend(socketPath, 0x10000, 1)
  await fe.setup((1n << 64n) - 1n)
  await fe.startVring(0, splitQueueLayout(0x1000, 16))
  return fe
}
