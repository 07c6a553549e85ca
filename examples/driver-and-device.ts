// The README's driver + device walkthrough, run as is by __test__/examples.spec.ts:
// node --import tsx examples/driver-and-device.ts
import { GuestMemory, Queue } from 'virtio-queue'
import { GuestAllocator, SplitQueueDriver, setUpDeviceQueue, splitQueueLayout } from 'virtio-queue/driver'

// Guest RAM: 1 MiB at guest address 0, with the rings of a 16-entry queue at 0x1000.
const memory = GuestMemory.fromRanges([[0, 0x100000]])
const layout = splitQueueLayout(0x1000, 16)

// The guest: a driver that lays chains out in the rings (its allocator is for indirect tables).
const allocator = new GuestAllocator(0x80000, 0x10000)
const driver = new SplitQueueDriver<{ text: string; reply: number }>(memory, { ...layout, eventIdx: true, allocator })

// The device: what the transport (virtio-pci, virtio-mmio) does when the guest sets the queue up.
const queue = new Queue(memory, 16)
const guard = queue.lockWithMemory()
try {
  setUpDeviceQueue(guard, layout, { eventIdx: true })

  // The guest sends two requests: a readable buffer with text, a writable one for the reply.
  for (const [i, text] of ['ping', 'hello'].entries()) {
    const request = 0x10000 + 0x1000 * i
    const reply = request + 0x800
    memory.write(request, Buffer.from(text))
    driver.addChain(
      [
        { addr: request, len: text.length },
        { addr: reply, len: 64, writable: true },
      ],
      { token: { text, reply } },
    )
  }
  if (driver.kick()) console.log('guest: notified the device')

  // The device serves every available chain: it answers each request in upper case.
  guard.disableNotification()
  for (const chain of guard.iter()) {
    const reader = chain.reader()
    const text = reader.read(reader.availableBytes()).toString()
    const written = chain.writer().write(Buffer.from(text.toUpperCase()))
    guard.addUsed(chain.headIndex, written)
    console.log(`device: chain ${chain.headIndex}: "${text}", ${written} bytes answered`)
  }
  if (guard.needsNotification()) console.log('device: interrupts the guest')
  guard.enableNotification()

  // The guest takes the completions back, with the token it gave each chain.
  for (let used = driver.popUsed(); used !== null; used = driver.popUsed()) {
    const { text, reply } = used.token!
    console.log(`guest: "${text}" -> "${memory.read(reply, used.len).toString()}"`)
  }
} finally {
  guard.release()
}
