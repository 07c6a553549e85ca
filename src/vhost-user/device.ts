// What a device model implements to be served over vhost-user.
import type { Vring } from './vring'

/**
 * A virtio device model served by a {@link VhostUserBackend}. Every method runs on the main
 * thread, one at a time, called by the backend; none may block. A method that throws is
 * reported (the request that caused it is refused, or the error is emitted as `'error'`), and
 * the backend keeps serving.
 *
 * @example A device that completes every chain with no data
 * ```ts
 * const device: VhostUserDevice = {
 *   features: 0n, numQueues: 1, maxQueueSize: 256,
 *   config: () => new Uint8Array(8),
 *   kick(vring) {
 *     using g = vring.queue.lockWithMemory()
 *     do {
 *       g.disableNotification()
 *       for (const chain of g.iter()) g.addUsed(chain.headIndex, 0)
 *       if (g.needsNotification()) vring.notify()
 *     } while (g.enableNotification())
 *   },
 * }
 * ```
 */
export interface VhostUserDevice {
  /**
   * Device feature bits (0 to 23 and 50 to 63). The backend adds `VIRTIO_F_VERSION_1`,
   * `VIRTIO_RING_F_EVENT_IDX`, `VIRTIO_RING_F_INDIRECT_DESC` and
   * `VHOST_USER_F_PROTOCOL_FEATURES`, and drops other transport bits (24 to 49). Read once, by
   * {@link VhostUserBackend.listen}.
   */
  readonly features: bigint
  /** How many vrings the device serves (1 to 256). Read once, by `listen()`. */
  readonly numQueues: number
  /** The largest ring size the device accepts: a power of two up to 32768. Read once, by `listen()`. */
  readonly maxQueueSize: number
  /** The configuration space; `GET_CONFIG` reads the requested range from it (copied at once). */
  config(): Uint8Array
  /**
   * A `SET_CONFIG` write of `data` at `offset`. Leave it out for a read-only configuration
   * space (writes are then refused); throw to refuse one write.
   */
  writeConfig?(offset: number, data: Uint8Array): void
  /** A vring starts being served: `vring.queue` is ready, over `vring.memory`. Throw to refuse the start. */
  queueStarted?(vring: Vring): void
  /**
   * The frontend kicked the vring (its kick eventfd was drained just before): serve the
   * available chains. Called once per wake-up of the main loop, however many kicks it drained.
   */
  kick(vring: Vring): void
  /**
   * The vring stops (`GET_VRING_BASE`, `SET_VRING_ENABLE 0`, a reset or a disconnect); it gets
   * no more kicks. Return a Promise to make the frontend's reply wait until no chain of this
   * queue is in flight: the backend then reports `vring.queue`'s `nextAvail` as where the ring
   * stopped. After a reset or disconnect nobody waits.
   */
  queueStopped?(vring: Vring): void | Promise<void>
  /** A frontend connected. */
  connected?(): void
  /** The frontend left (`error`: why the connection was dropped, if it was); the backend listens again. */
  disconnected?(error?: Error): void
  /** `RESET_OWNER`, and after a disconnect: back to the state before any frontend (keep persistent state, such as a disk). */
  reset?(): void
}
