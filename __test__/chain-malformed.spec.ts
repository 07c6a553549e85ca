// Malformed chains written with the driver's raw helpers: stopReason, and the descriptors before the bad one.
import test from 'ava'

import { type DescriptorChain, GuestMemory } from '..'
import type { SplitQueueDriver } from '../driver'
import { argRangeError, DATA_BASE, makeRig, MEM_SIZE, vqError, writeRawDescriptor } from './helpers/queue-setup'

const NEXT = 1
const WRITE = 2
const INDIRECT = 4
const SIZE = 8

/** Publishes the given heads as avail entries 0.. and pops the first chain. */
function popRaw(driver: SplitQueueDriver<string>, guard: import('..').QueueGuard, ...heads: number[]): DescriptorChain {
  heads.forEach((h, slot) => driver.writeAvailEntry(slot, h))
  driver.setAvailIdx(heads.length)
  const chain = guard.popDescriptorChain()
  if (!chain) throw new Error('no chain')
  return chain
}

test('next index ≥ size: InvalidDescriptorIndex after the good descriptors', (t) => {
  const { guard, driver } = makeRig({ size: SIZE })
  driver.writeDescriptor(0, { addr: DATA_BASE, len: 16, flags: NEXT, next: 1 })
  driver.writeDescriptor(1, { addr: DATA_BASE + 16, len: 16, flags: NEXT, next: SIZE })
  const chain = popRaw(driver, guard, 0)
  t.is(chain.stopReason, 'InvalidDescriptorIndex')
  t.false(chain.isComplete)
  t.deepEqual(
    chain.descriptors().map((d) => [d.addr, d.len, d.next]),
    [
      [DATA_BASE, 16, 1],
      [DATA_BASE + 16, 16, SIZE],
    ],
  )
})

test('a head index ≥ size yields an empty chain: InvalidDescriptorIndex', (t) => {
  const { guard, driver } = makeRig({ size: SIZE })
  const chain = popRaw(driver, guard, 0xffff)
  t.is(chain.headIndex, 0xffff)
  t.is(chain.length, 0)
  t.is(chain.stopReason, 'InvalidDescriptorIndex')
  // The crate's add_used refuses such a head.
  t.throws(() => guard.addUsed(chain.headIndex, 0), vqError('InvalidDescriptorIndex'))
})

test('a loop: InvalidChain once size descriptors were yielded', (t) => {
  const { guard, driver } = makeRig({ size: SIZE })
  driver.writeDescriptor(3, { addr: DATA_BASE, len: 4, flags: NEXT, next: 5 })
  driver.writeDescriptor(5, { addr: DATA_BASE + 0x100, len: 4, flags: NEXT, next: 3 })
  const chain = popRaw(driver, guard, 3)
  t.is(chain.stopReason, 'InvalidChain')
  t.is(chain.length, SIZE)
  t.deepEqual(
    chain.descriptors().map((d) => d.next),
    [5, 3, 5, 3, 5, 3, 5, 3],
  )
})

test('an indirect descriptor inside an indirect table: InvalidIndirectDescriptor', (t) => {
  const { guard, driver, memory } = makeRig({ size: SIZE })
  const table = DATA_BASE + 0x1000
  driver.writeDescriptor(0, { addr: table, len: 32, flags: INDIRECT, next: 0 })
  writeRawDescriptor(memory, table, { addr: DATA_BASE, len: 8, flags: NEXT, next: 1 })
  writeRawDescriptor(memory, table + 16, { addr: table, len: 32, flags: INDIRECT, next: 0 })
  const chain = popRaw(driver, guard, 0)
  t.is(chain.stopReason, 'InvalidIndirectDescriptor')
  t.deepEqual(
    chain.descriptors().map((d) => [d.addr, d.len]),
    [[DATA_BASE, 8]],
  )
})

test('an indirect table length that is not a multiple of 16: InvalidIndirectDescriptorTable', (t) => {
  const { guard, driver, memory } = makeRig({ size: SIZE })
  const table = DATA_BASE + 0x1000
  writeRawDescriptor(memory, table, { addr: DATA_BASE + 0x200, len: 8, flags: 0, next: 0 })
  driver.writeDescriptor(0, { addr: DATA_BASE, len: 10, flags: NEXT, next: 1 })
  driver.writeDescriptor(1, { addr: table, len: 24, flags: INDIRECT, next: 0 })
  driver.writeDescriptor(2, { addr: table, len: 16, flags: INDIRECT, next: 0 })
  const bad = popRaw(driver, guard, 0, 2)
  t.is(bad.stopReason, 'InvalidIndirectDescriptorTable')
  t.deepEqual(
    bad.descriptors().map((d) => [d.addr, d.len]),
    [[DATA_BASE, 10]],
  )
  const good = guard.popDescriptorChain()!
  t.is(good.stopReason, null, 'the same table with a valid length')
  t.deepEqual(
    good.descriptors().map((d) => [d.addr, d.len]),
    [[DATA_BASE + 0x200, 8]],
  )
})

test('descriptors outside guest memory: GuestMemory', (t) => {
  const { guard, driver, memory } = makeRig({ size: SIZE })
  // An indirect table whose second entry lies past the end of memory.
  const table = MEM_SIZE - 16
  driver.writeDescriptor(0, { addr: table, len: 32, flags: INDIRECT, next: 0 })
  writeRawDescriptor(memory, table, { addr: DATA_BASE, len: 4, flags: NEXT | WRITE, next: 1 })
  const chain = popRaw(driver, guard, 0)
  t.is(chain.stopReason, 'GuestMemory')
  t.deepEqual(
    chain.descriptors().map((d) => [d.addr, d.len, d.isWriteOnly()]),
    [[DATA_BASE, 4, true]],
  )

  // A descriptor table outside memory: nothing can be read.
  const other = makeRig({ size: SIZE })
  other.driver.writeAvailEntry(0, 0)
  other.driver.setAvailIdx(1)
  other.guard.setDescTableAddress(MEM_SIZE + 0x1000)
  const empty = other.guard.popDescriptorChain()!
  t.is(empty.length, 0)
  t.is(empty.stopReason, 'GuestMemory')
})

test('total length overflowing 32 bits: DescriptorChainOverflow', (t) => {
  const { guard, driver } = makeRig({ size: SIZE })
  driver.writeDescriptor(0, { addr: DATA_BASE, len: 0xfffffff0, flags: NEXT, next: 1 })
  driver.writeDescriptor(1, { addr: DATA_BASE, len: 0x0f, flags: NEXT | WRITE, next: 2 })
  driver.writeDescriptor(2, { addr: DATA_BASE, len: 1, flags: WRITE, next: 0 })
  const chain = popRaw(driver, guard, 0)
  t.is(chain.stopReason, 'DescriptorChainOverflow')
  // 0xfffffff0 + 0xf = 2^32 - 1 still fits; the third descriptor's byte does not.
  t.deepEqual(
    chain.descriptors().map((d) => d.len),
    [0xfffffff0, 0x0f],
  )
})

test('a descriptor address overflowing 64 bits: AddressOverflow', (t) => {
  const { guard, driver } = makeRig({ size: SIZE })
  // Descriptor table at 2^64 - 16: entry 0 is not memory, entry 1 lies past 2^64.
  driver.writeAvailEntry(0, 0)
  driver.writeAvailEntry(1, 1)
  driver.setAvailIdx(2)
  guard.setDescTableAddress(0xfffffff0, 0xffffffff)
  t.is(guard.popDescriptorChain()!.stopReason, 'GuestMemory')
  const chain = guard.popDescriptorChain()!
  t.is(chain.headIndex, 1)
  t.is(chain.length, 0)
  t.is(chain.stopReason, 'AddressOverflow')
})

test('malformed chains do not disturb the chains around them', (t) => {
  const { guard, driver } = makeRig({ size: SIZE })
  driver.writeDescriptor(0, { addr: DATA_BASE, len: 1, flags: 0, next: 0 })
  driver.writeDescriptor(1, { addr: DATA_BASE, len: 1, flags: NEXT, next: 9 })
  driver.writeDescriptor(2, { addr: DATA_BASE + 8, len: 2, flags: WRITE, next: 0 })
  ;[0, 1, 2].forEach((h, slot) => driver.writeAvailEntry(slot, h))
  driver.setAvailIdx(3)
  const chains = [...guard.iter()]
  t.deepEqual(
    chains.map((c) => [c.headIndex, c.stopReason, c.length]),
    [
      [0, null, 1],
      [1, 'InvalidDescriptorIndex', 1],
      [2, null, 1],
    ],
  )
  for (const c of chains) guard.addUsed(c.headIndex, 0)
  t.is(guard.usedIdx(), 3)
})

test('a descriptor address ≥ 2^53: addrBigInt is exact, addr is rejected by every API', (t) => {
  const { guard, driver, memory } = makeRig({ size: SIZE })
  const huge = 2n ** 60n + 0x1235n
  driver.writeDescriptor(0, { addr: huge, len: 8, flags: NEXT, next: 1 })
  driver.writeDescriptor(1, { addr: DATA_BASE, len: 8, flags: WRITE, next: 0 })
  const chain = popRaw(driver, guard, 0)
  t.true(chain.isComplete)
  const [d] = chain.descriptors()
  t.is(d!.addrBigInt, huge)
  t.false(Number.isSafeInteger(d!.addr))
  t.is(chain.descriptors()[1]!.addrBigInt, BigInt(DATA_BASE))
  // The inexact number is never taken as an address.
  t.throws(() => memory.readU8(d!.addr), argRangeError('addr'))
  t.throws(() => memory.read(d!.addr, 8), argRangeError('addr'))
  t.throws(() => memory.checkRange(d!.addr, 8), argRangeError('addr'))
  t.throws(() => memory.checkRange(d!.addrBigInt, 8), argRangeError('addr'))
  t.throws(() => chain.reader(), vqError('InvalidChain', /0x1000000000001235/))
  t.throws(() => chain.buffers(), vqError('InvalidChain'))
  t.throws(() => chain.readableBuffers(), vqError('InvalidChain'))
  // The writable side does not include it.
  t.is(chain.writer().availableBytes(), 8)
  t.is(chain.writableBuffers().length, 1)
})

test('an address just below 2^53 in a region ending there is usable', (t) => {
  const memory = GuestMemory.fromRanges([
    [0, 0x100000],
    [2 ** 53 - 0x1000, 0x1000],
  ])
  const { guard, driver } = makeRig({ size: SIZE, memory })
  const top = 2 ** 53 - 0x10
  memory.write(top, Buffer.from('0123456789abcdef'))
  driver.addChain([{ addr: top, len: 16 }])
  const chain = guard.popDescriptorChain()!
  t.is(chain.descriptors()[0]!.addr, top)
  t.is(chain.reader().read(16).toString(), '0123456789abcdef')
  t.is(guard.popDescriptorChain(), null)
})
