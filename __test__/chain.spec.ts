// DescriptorChain: descriptors as the crate read them, direct and indirect, and long chains.
import test from 'ava'

import {
  CHAIN_STOP_REASONS,
  type Descriptor,
  DescriptorChain,
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
} from '..'
import { addSimpleChains, argRangeError, argTypeError, DATA_BASE, makeRig } from './helpers/queue-setup'

type Plain = { addr: number; len: number; flags: number; next: number }

function plain(d: Descriptor): Plain {
  return { addr: d.addr, len: d.len, flags: d.flags, next: d.next }
}

test('flag constants and stop reasons', (t) => {
  t.is(VRING_DESC_F_NEXT, 1)
  t.is(VRING_DESC_F_WRITE, 2)
  t.is(VRING_DESC_F_INDIRECT, 4)
  t.deepEqual(CHAIN_STOP_REASONS, [
    null,
    'InvalidDescriptorIndex',
    'InvalidIndirectDescriptor',
    'InvalidIndirectDescriptorTable',
    'GuestMemory',
    'DescriptorChainOverflow',
    'InvalidChain',
    'AddressOverflow',
  ])
})

test('a direct chain: head, descriptors as in the table, readable/writable split', (t) => {
  const { guard, driver, memory } = makeRig({ size: 8 })
  addSimpleChains(driver, 1) // occupy descriptor 0 so the next chain starts elsewhere
  const head = driver.addChain([
    { addr: DATA_BASE, len: 16 },
    { addr: DATA_BASE + 0x100, len: 0x200 },
    { addr: DATA_BASE + 0x1000, len: 0x80, writable: true },
    { addr: DATA_BASE + 0x2000, len: 1, writable: true },
  ])
  guard.popDescriptorChain()
  const chain = guard.popDescriptorChain()!
  t.true(chain instanceof DescriptorChain)
  t.is(chain.headIndex, head)
  t.not(head, 0)
  t.is(chain.memory, memory)
  t.is(chain.length, 4)
  t.true(chain.isComplete)
  t.is(chain.stopReason, null)

  // The descriptors are exactly what the driver wrote in the table, following `next`.
  const expected: Plain[] = []
  for (let i = head, more = true; more; ) {
    const raw = driver.readDescriptor(i)
    expected.push({ addr: Number(raw.addr), len: raw.len, flags: raw.flags, next: raw.next })
    more = (raw.flags & VRING_DESC_F_NEXT) !== 0
    i = raw.next
  }
  const descs = chain.descriptors()
  t.deepEqual(descs.map(plain), expected)
  t.deepEqual(
    descs.map((d) => [d.addr, d.len, d.isWriteOnly(), d.hasNext(), d.refersToIndirectTable()]),
    [
      [DATA_BASE, 16, false, true, false],
      [DATA_BASE + 0x100, 0x200, false, true, false],
      [DATA_BASE + 0x1000, 0x80, true, true, false],
      [DATA_BASE + 0x2000, 1, true, false, false],
    ],
  )
  t.is(descs[0]!.addrBigInt, BigInt(DATA_BASE))
  t.deepEqual(
    chain.readable().map((d) => d.len),
    [16, 0x200],
  )
  t.deepEqual(
    chain.writable().map((d) => d.len),
    [0x80, 1],
  )
  t.deepEqual([...chain].map(plain), descs.map(plain), 'iterable')
  // descriptors() returns a fresh array each time.
  descs.pop()
  t.is(chain.descriptors().length, 4)
})

test('descriptor(i): one descriptor in chain order, before or after descriptors() built the list', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  driver.addChain([
    { addr: DATA_BASE, len: 16 },
    { addr: DATA_BASE + 0x1000, len: 0x80, writable: true },
    { addr: DATA_BASE + 0x2000, len: 1, writable: true },
  ])
  const chain = guard.popDescriptorChain()!
  const last = chain.descriptor(chain.length - 1)!
  t.deepEqual([last.addr, last.len, last.isWriteOnly(), last.hasNext()], [DATA_BASE + 0x2000, 1, true, false])
  t.deepEqual(plain(chain.descriptor(0)!), plain(chain.descriptors()[0]!))
  t.deepEqual(plain(chain.descriptor(1)!), plain(chain.descriptors()[1]!), 'after the list was built')
  t.is(chain.descriptor(3), undefined)
  t.throws(() => chain.descriptor(-1), argRangeError('index'))
  t.throws(() => chain.descriptor(0.5), argRangeError('index'))
  t.throws(() => chain.descriptor('0' as never), argTypeError('index'))
})

test('chains are snapshots: rewriting the table later does not change a popped chain', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  const head = driver.addChain([{ addr: DATA_BASE, len: 16 }])
  const chain = guard.popDescriptorChain()!
  driver.writeDescriptor(head, { addr: 0x1234560, len: 99, flags: 0, next: 0 })
  t.deepEqual(chain.descriptors().map(plain), [{ addr: DATA_BASE, len: 16, flags: 0, next: 0 }])
})

test('an indirect chain yields the entries of its table', (t) => {
  const { guard, driver, allocator } = makeRig({ size: 8 })
  const buffers = [
    { addr: DATA_BASE, len: 8 },
    { addr: DATA_BASE + 0x40, len: 24 },
    { addr: DATA_BASE + 0x400, len: 512, writable: true },
  ]
  const head = driver.addChain(buffers, { indirect: true })
  t.is(allocator.allocationCount, 1)
  const ring = driver.readDescriptor(head)
  t.is(ring.flags, VRING_DESC_F_INDIRECT)
  t.is(ring.len, 16 * 3)

  const chain = guard.popDescriptorChain()!
  t.is(chain.headIndex, head)
  t.true(chain.isComplete)
  t.is(chain.length, 3)
  const descs = chain.descriptors()
  t.deepEqual(
    descs.map((d) => [d.addr, d.len, d.isWriteOnly()]),
    buffers.map((b) => [b.addr, b.len, b.writable === true]),
  )
  t.false(descs.some((d) => d.refersToIndirectTable()))
  t.deepEqual(
    descs.map((d) => d.hasNext()),
    [true, true, false],
  )
  t.deepEqual(chain.readable().length, 2)
  t.deepEqual(chain.writable().length, 1)
})

test('a caller-placed indirect table works too', (t) => {
  const { guard, driver, memory } = makeRig({ size: 4 })
  const tableAddr = DATA_BASE + 0x8000
  const head = driver.addChain(
    [
      { addr: DATA_BASE, len: 1 },
      { addr: DATA_BASE + 8, len: 2, writable: true },
    ],
    { indirect: { tableAddr } },
  )
  t.is(memory.readU64(tableAddr), BigInt(DATA_BASE))
  const chain = guard.popDescriptorChain()!
  t.is(chain.headIndex, head)
  t.deepEqual(
    chain.descriptors().map((d) => [d.addr, d.len, d.flags & VRING_DESC_F_WRITE]),
    [
      [DATA_BASE, 1, 0],
      [DATA_BASE + 8, 2, VRING_DESC_F_WRITE],
    ],
  )
})

test('a chain of 600 descriptors (more than the 32*8 a prefetch holds) is popped intact', (t) => {
  const { guard, driver } = makeRig({ size: 1024 })
  const before = addSimpleChains(driver, 2)
  const buffers = Array.from({ length: 600 }, (_, i) => ({ addr: DATA_BASE + 4 * i, len: 4, writable: i >= 300 }))
  const head = driver.addChain(buffers)
  const after = addSimpleChains(driver, 2)
  const chains: DescriptorChain[] = [...guard.iter()]
  t.deepEqual(
    chains.map((c) => c.headIndex),
    [...before, head, ...after],
  )
  const long = chains[2]!
  t.true(long.isComplete)
  t.is(long.length, 600)
  t.deepEqual(
    long.descriptors().map((d) => d.addr),
    buffers.map((b) => b.addr),
  )
  t.is(long.readable().length, 300)
  t.is(long.writable().length, 300)
  t.is(long.writer().availableBytes(), 1200)
})

test('an indirect table of 1000 entries is popped intact', (t) => {
  const { guard, driver } = makeRig({ size: 1024 })
  const buffers = Array.from({ length: 1000 }, (_, i) => ({ addr: DATA_BASE + 8 * i, len: 8 }))
  const head = driver.addChain(buffers, { indirect: true })
  addSimpleChains(driver, 40)
  const chains = [...guard.iter()]
  t.is(chains.length, 41)
  t.is(chains[0]!.headIndex, head)
  t.is(chains[0]!.length, 1000)
  t.true(chains[0]!.isComplete)
  t.deepEqual(
    chains[0]!.descriptors().map((d) => d.addr),
    buffers.map((b) => b.addr),
  )
  t.is(chains[0]!.reader().availableBytes(), 8000)
  t.true(chains.slice(1).every((c) => c.length === 1 && c.isComplete))
})

test('many chains across several prefetch batches keep their order and contents', (t) => {
  const { guard, driver } = makeRig({ size: 512 })
  const heads: number[] = []
  for (let i = 0; i < 100; i++) {
    const n = 1 + (i % 5)
    heads.push(
      driver.addChain(Array.from({ length: n }, (_, j) => ({ addr: DATA_BASE + 0x1000 * i + 16 * j, len: i + j + 1 }))),
    )
  }
  const chains = [...guard.iter()]
  t.deepEqual(
    chains.map((c) => c.headIndex),
    heads,
  )
  chains.forEach((c, i) => {
    t.is(c.length, 1 + (i % 5))
    t.deepEqual(
      c.descriptors().map((d) => [d.addr, d.len]),
      Array.from({ length: c.length }, (_, j) => [DATA_BASE + 0x1000 * i + 16 * j, i + j + 1]),
    )
  })
})

test('chains kept across hundreds of pops keep their descriptors (prefetch storage is never reused under them)', (t) => {
  const { guard, driver } = makeRig({ size: 8 })
  const kept: Array<[DescriptorChain, number]> = []
  for (let i = 0; i < 1200; i++) {
    const addr = DATA_BASE + 8 * i
    driver.addChain([{ addr, len: 8 }])
    const chain = guard.popDescriptorChain()!
    kept.push([chain, addr])
    guard.addUsed(chain.headIndex, 0)
    driver.popUsed()
  }
  t.true(
    kept.every(([c, addr]) => c.length === 1 && c.descriptors()[0]!.addr === addr && c.descriptors()[0]!.len === 8),
  )
})
