// The one place the virtio-blk example touches `virtio-queue/vhost-user`, the package's
// vhost-user backend API. That subpath is being written in parallel; until it is in
// this tree, this file declares the contract it is written to and loads the module at
// run time, so everything else type-checks and runs (and says clearly why it cannot
// serve when the module is missing).
//
// TODO(vhost-user subpath): once `vhost-user.js` / `vhost-user.d.ts` exist at the
// package root, replace the declarations below with
//   import { VhostUserBackend, type VhostUserDevice, type Vring } from '../../vhost-user'
// (in your project: from 'virtio-queue/vhost-user'), and loadVhostUser() with that import.
import type { EventEmitter } from 'node:events'

import type { GuestMemory, Queue } from '../..'

/** What a vhost-user backend asks of a device (the contract of `virtio-queue/vhost-user`). */
export interface VhostUserDevice {
  /** Device feature bits; the backend adds VERSION_1, EVENT_IDX, INDIRECT_DESC and PROTOCOL_FEATURES. */
  readonly features: bigint
  readonly numQueues: number
  readonly maxQueueSize: number
  /** GET_CONFIG reads from it. */
  config(): Uint8Array
  writeConfig?(offset: number, data: Uint8Array): void
  queueStarted?(vring: Vring): void
  /** Main thread, once per kick. */
  kick(vring: Vring): void
  /** Resolve once no chain of this queue is in flight. */
  queueStopped?(vring: Vring): void | Promise<void>
  connected?(): void
  disconnected?(error?: Error): void
  reset?(): void
}

/** One vring of a connected frontend. */
export interface Vring {
  readonly index: number
  readonly queue: Queue
  readonly memory: GuestMemory
  readonly ackedFeatures: bigint
  /** Writes the call eventfd (interrupts the guest). */
  notify(): void
}

/** A backend listening on a Unix socket: events 'connect', 'disconnect', 'error', 'refused'. */
export interface VhostUserBackendInstance extends EventEmitter {
  listen(): Promise<void>
  close(): Promise<void>
  readonly connected: boolean
}

export type VhostUserBackendClass = new (options: {
  socketPath: string
  device: VhostUserDevice
}) => VhostUserBackendInstance

/** Where the module is looked for: the package root's `vhost-user` entry point. */
const SPECIFIER = '../../vhost-user'

/**
 * Environment variable naming another module to load instead (an absolute path). For the
 * example's own tests, which drive the CLI through a stand-in backend; not for users.
 */
export const MODULE_OVERRIDE_ENV = 'VIRTIO_BLK_VHOST_USER_MODULE'

export type LoadResult =
  | { ok: true; VhostUserBackend: VhostUserBackendClass }
  | {
      ok: false
      reason: string
      /** True when the module is simply not in this build (not yet written), rather than broken. */
      missing: boolean
    }

/** Loads `virtio-queue/vhost-user`, or says why it cannot. */
export function loadVhostUser(): LoadResult {
  const spec = process.env[MODULE_OVERRIDE_ENV] || SPECIFIER
  let mod: { VhostUserBackend?: unknown }
  try {
    mod = require(spec)
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    if (err.code === 'MODULE_NOT_FOUND' && err.message.includes(spec))
      return {
        ok: false,
        reason: `the vhost-user backend API (virtio-queue/vhost-user) is not in this build: ${spec} not found`,
        missing: true,
      }
    return { ok: false, reason: `loading ${spec} failed: ${err.message}`, missing: false }
  }
  if (typeof mod.VhostUserBackend !== 'function')
    return { ok: false, reason: `${spec} has no VhostUserBackend class`, missing: false }
  return { ok: true, VhostUserBackend: mod.VhostUserBackend as VhostUserBackendClass }
}
