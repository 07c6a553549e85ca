// ESM entry of virtio-queue: the CommonJS API's named exports (one module
// instance for both module systems; index.js loads lib/index.js).
import api from './index.js'

export const {
  GuestMemory,
  Queue,
  QueueGuard,
  AvailIter,
  DescriptorChain,
  CHAIN_STOP_REASONS,
  Descriptor,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_DESC_F_INDIRECT,
  Reader,
  Writer,
  ChainBatch,
  UsedBatch,
  FileIoBatch,
  VirtioQueueError,
  SystemError,
  PAGE_SIZE,
  ADDRESS_LIMIT,
} = api
