// What a transport (virtio-pci, virtio-mmio) does on the device side when the
// guest driver sets a queue up: it hands the device queue the size and ring
// addresses the driver chose, the negotiated event-idx feature, then ready.
import type { DeviceQueueSetup, QueueLayoutLike, SetUpDeviceQueueOptions } from '../../driver'

export type { DeviceQueueSetup, QueueLayoutLike, SetUpDeviceQueueOptions }

const TWO_32 = 2 ** 32

export function setUpDeviceQueue(
  queue: DeviceQueueSetup,
  layout: QueueLayoutLike,
  options: SetUpDeviceQueueOptions = {},
): void {
  queue.setSize(layout.size)
  queue.setDescTableAddress(layout.descTable % TWO_32, Math.floor(layout.descTable / TWO_32))
  queue.setAvailRingAddress(layout.availRing % TWO_32, Math.floor(layout.availRing / TWO_32))
  queue.setUsedRingAddress(layout.usedRing % TWO_32, Math.floor(layout.usedRing / TWO_32))
  queue.setEventIdx(options.eventIdx ?? layout.eventIdx ?? false)
  queue.setReady(options.ready ?? true)
}
