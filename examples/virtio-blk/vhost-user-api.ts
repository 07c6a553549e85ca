// The one place the virtio-blk example touches `virtio-queue/vhost-user`, the package's
// vhost-user backend API (in your project: `from 'virtio-queue/vhost-user'`). The device
// contract is declared here structurally (the module's Vring is a class with private
// state, which the example's tests stand in for), checked below against the module's own
// types; the class is loaded at run time so the tests can drive the CLI through a
// stand-in backend (MODULE_OVERRIDE_ENV), and a build without the module says why it
// cannot serve instead of failing to start.
import type { EventEmitter } from 'node:events'

import type { GuestMemory, Queue } from '../..'
import type * as api from '../../vhost-user'

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

// The contract above agrees with the module's: a device written to it is a device of the
// module's, and the module's vrings are vrings here (a compile-time check only).
type Assignable<T extends U, U> = T
export type ContractChecks = [
  Assignable<VhostUserDevice, api.VhostUserDevice>,
  Assignable<api.Vring, Vring>,
  Assignable<api.VhostUserBackend, VhostUserBackendInstance>,
]

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
