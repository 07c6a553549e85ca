// The smallest vhost-user device the lifetime fixtures need: one ring of up to 16, no
// features, 4 bytes of config, kicks ignored; it remembers the ring once the frontend starts
// it, so a fixture can wait for that and then take views of the frontend's memory.
import type { VhostUserDevice, Vring } from '../../src/vhost-user/index'

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
