// ESM entry of virtio-queue/vhost-user: the CommonJS API's named exports (one module
// instance for both module systems; vhost-user.js loads lib/vhost-user).
import api from './vhost-user.js'

export const {
  VhostUserBackend,
  Vring,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  VHOST_USER_F_PROTOCOL_FEATURES,
} = api
