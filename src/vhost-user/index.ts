/**
 * `virtio-queue/vhost-user` — vhost-user backends in Node.js (Linux).
 *
 * A {@link VhostUserBackend} listens on a Unix socket; a frontend (QEMU's
 * `vhost-user-blk-pci`, `vhost-user-net-pci`, ..., or any vhost-user frontend) connects
 * and shares the guest's memory and rings. The protocol runs natively (rust-vmm's `vhost`
 * crate); the device model is a {@link VhostUserDevice} whose vrings are ordinary `Queue`s,
 * so the same device code serves in-process queues and vhost-user ones.
 *
 * @module virtio-queue/vhost-user
 */
export { VhostUserBackend } from './backend'
export type { VhostUserBackendOptions } from './backend'
export type { VhostUserDevice } from './device'
export { Vring } from './vring'
export {
  VHOST_USER_F_PROTOCOL_FEATURES,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
} from './constants'
