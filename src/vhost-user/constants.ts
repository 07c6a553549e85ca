// Feature bits of the virtio transport that a vhost-user backend offers on top of the device's.

/** `VIRTIO_F_VERSION_1` (bit 32): a virtio 1.x device. The backend always offers it. */
export const VIRTIO_F_VERSION_1: bigint = 1n << 32n
/** `VIRTIO_RING_F_INDIRECT_DESC` (bit 28): indirect descriptor tables. The backend always offers it. */
export const VIRTIO_RING_F_INDIRECT_DESC: bigint = 1n << 28n
/** `VIRTIO_RING_F_EVENT_IDX` (bit 29): `used_event` / `avail_event` notification suppression. Always offered. */
export const VIRTIO_RING_F_EVENT_IDX: bigint = 1n << 29n
/** `VHOST_USER_F_PROTOCOL_FEATURES` (bit 30): the vhost-user protocol feature negotiation. Always offered. */
export const VHOST_USER_F_PROTOCOL_FEATURES: bigint = 1n << 30n
