// ESM entry of virtio-queue/driver: the CommonJS driver API's named exports
// (one module instance for both module systems; driver.js loads lib/driver).
import api from './driver.js'

export const {
  DriverConstants,
  vringNeedEvent,
  DriverError,
  splitQueueLayout,
  descTableBytes,
  availRingBytes,
  usedRingBytes,
  alignUp,
  GuestAllocator,
  SplitQueueDriver,
  setUpDeviceQueue,
} = api
