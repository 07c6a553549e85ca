// The careless caller: for every public method and argument, wrong types,
// NaN, negative, fractional and out-of-range numbers, bigint for number and
// the reverse, and missing arguments give a TypeError (ERR_INVALID_ARG_TYPE)
// or RangeError (ERR_OUT_OF_RANGE) whose message names the argument, and a
// rejected call changes nothing (QueueGuard calls are made with chains popped
// ahead in a batch, which a rejected call must not drop).
import test from 'ava'

import { ChainBatch, GuestMemory, Queue, UsedBatch, VirtioQueueError, type QueueState } from '..'
import type { MemoryHandle, NativeBinding, QueueHandle } from '../src/native'
import { offer, smallRig } from './helpers/fuzz-rig'

type Expect = 'type' | 'range'
type Bad = [label: string, value: unknown, expect: Expect]
/** The marker for a missing argument (the call gets fewer arguments). */
const MISSING = Symbol('missing')

const common: Bad[] = [
  ['a string', '1', 'type'],
  ['null', null, 'type'],
  ['an object', {}, 'type'],
  ['a boolean', true, 'type'],
  ['a symbol', Symbol('s'), 'type'],
]
const uint = (max: number, optional = false): Bad[] => [
  ...common.filter(([l]) => !(optional && l === 'null')),
  ['a bigint', 1n, 'type'],
  ['NaN', NaN, 'range'],
  ['-1', -1, 'range'],
  ['1.5', 1.5, 'range'],
  ['Infinity', Infinity, 'range'],
  [`${max + 1}`, max + 1, 'range'],
  ...(optional ? [] : ([['missing', MISSING, 'type']] as Bad[])),
]
const addr: Bad[] = [
  ...common,
  ['NaN', NaN, 'range'],
  ['-1', -1, 'range'],
  ['1.5', 1.5, 'range'],
  ['Infinity', Infinity, 'range'],
  ['2^53', 2 ** 53, 'range'],
  ['-1n', -1n, 'range'],
  ['2n^64n', 2n ** 64n, 'range'],
  ['missing', MISSING, 'type'],
]
const bool: Bad[] = [
  ['1', 1, 'type'],
  ["'true'", 'true', 'type'],
  ['null', null, 'type'],
  ['an object', {}, 'type'],
  ['missing', MISSING, 'type'],
]
const order: Bad[] = [
  ["'fast'", 'fast', 'type'],
  ['1', 1, 'type'],
  ["'toString'", 'toString', 'type'],
  ['null', null, 'type'],
]
const bytes: Bad[] = [
  ['a string', 'ab', 'type'],
  ['an array', [1, 2], 'type'],
  ['a Uint16Array', new Uint16Array(2), 'type'],
  ['an ArrayBuffer', new ArrayBuffer(2), 'type'],
  ['null', null, 'type'],
  ['missing', MISSING, 'type'],
]
const instance: Bad[] = [
  ['an object', {}, 'type'],
  ['null', null, 'type'],
  ['a number', 1, 'type'],
  ['missing', MISSING, 'type'],
]

interface Case {
  method: string
  /** A call with valid arguments. */
  call: (...args: unknown[]) => unknown
  args: unknown[]
  /** [argument index, name in the message, bad values]. */
  params: Array<[number, string, Bad[]]>
  /** Run before each bad call (QueueGuard methods: have chains popped ahead, which a careless drop would lose). */
  prepare?: () => void
}

function rig() {
  const r = smallRig()
  offer(r, 3)
  const first = r.guard.popDescriptorChain()! // the other two stay prefetched
  r.memory.write(0x100, new Uint8Array(8).fill(0xab))
  return { ...r, chain: first }
}

function cases(r: ReturnType<typeof rig>): Case[] {
  const m = r.memory as unknown as Record<string, (...a: unknown[]) => unknown>
  const g = r.guard as unknown as Record<string, (...a: unknown[]) => unknown>
  const mem = (name: string, args: unknown[], params: Case['params']): Case => ({
    method: `GuestMemory.${name}`,
    call: (...a) => m[name]!.apply(r.memory, a),
    args,
    params,
  })
  const prepare = () => {
    r.guard.setNextAvail(0)
    r.guard.popDescriptorChain()
  }
  const guard = (name: string, args: unknown[], params: Case['params']): Case => ({
    method: `QueueGuard.${name}`,
    call: (...a) => g[name]!.apply(r.guard, a),
    args,
    params,
    prepare,
  })
  const state: QueueState = r.queue.state()
  const other = smallRig()
  offer(other, 4)
  const batch = new ChainBatch(4, 8)
  other.guard.popChains(batch)
  const withState = (k: string, v: unknown) => ({ ...state, [k]: v })
  return [
    {
      method: 'GuestMemory.fromRanges',
      call: (x) => GuestMemory.fromRanges(x as never),
      args: [[[0, 4096]]],
      params: [
        [
          0,
          'ranges',
          [
            ['a string', 'x', 'type'],
            ['null', null, 'type'],
            ['missing', MISSING, 'type'],
          ],
        ],
      ],
    },
    {
      method: 'GuestMemory.fromRanges (range)',
      call: (x) => GuestMemory.fromRanges([x as never]),
      args: [[0, 4096]],
      params: [
        [
          0,
          'ranges[0]',
          [
            ['a number', 5, 'type'],
            ['a 1-element array', [0], 'type'],
            ['null', null, 'type'],
          ],
        ],
      ],
    },
    {
      method: 'GuestMemory.fromRanges (address)',
      call: (a) => GuestMemory.fromRanges([[a as never, 4096]]),
      args: [0],
      params: [[0, 'ranges[0][0]', addr.filter(([l]) => l !== 'missing')]],
    },
    {
      method: 'GuestMemory.fromRanges (size)',
      call: (s) => GuestMemory.fromRanges([[0, s as never]]),
      args: [4096],
      params: [[0, 'ranges[0][1]', addr.filter(([l]) => l !== 'missing')]],
    },
    {
      method: 'GuestMemory.fromBuffers',
      call: (x) => GuestMemory.fromBuffers(x as never),
      args: [[{ guestAddress: 0, buffer: new ArrayBuffer(64) }]],
      params: [
        [
          0,
          'regions',
          [
            ['a string', 'x', 'type'],
            ['null', null, 'type'],
            ['missing', MISSING, 'type'],
          ],
        ],
      ],
    },
    {
      method: 'GuestMemory.fromBuffers (entry)',
      call: (x) => GuestMemory.fromBuffers([x as never]),
      args: [{ guestAddress: 0, buffer: new ArrayBuffer(64) }],
      params: [
        [
          0,
          'regions[0]',
          [
            ['a number', 5, 'type'],
            ['null', null, 'type'],
          ],
        ],
      ],
    },
    {
      method: 'GuestMemory.fromBuffers (address)',
      call: (a) => GuestMemory.fromBuffers([{ guestAddress: a as never, buffer: new ArrayBuffer(64) }]),
      args: [0],
      params: [[0, 'regions[0].guestAddress', addr.filter(([l]) => l !== 'missing')]],
    },
    {
      method: 'GuestMemory.fromBuffers (buffer)',
      call: (b) => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: b as never }]),
      args: [new ArrayBuffer(64)],
      params: [
        [
          0,
          'regions[0].buffer',
          [
            ['a string', 'x', 'type'],
            ['an array', [1], 'type'],
            ['a number', 64, 'type'],
            ['null', null, 'type'],
          ],
        ],
      ],
    },
    ...['readU8', 'readU16', 'readU32', 'readU64', 'loadU16'].map((n) => mem(n, [0x100], [[0, 'addr', addr]])),
    ...(
      [
        ['writeU8', 0xff],
        ['writeU16', 0xffff],
        ['writeU32', 0xffffffff],
        ['storeU16', 0xffff],
      ] as const
    ).map(([n, max]) =>
      mem(
        n,
        [0x100, 1],
        [
          [0, 'addr', addr],
          [1, 'value', uint(max)],
        ],
      ),
    ),
    mem(
      'writeU64',
      [0x100, 1n],
      [
        [0, 'addr', addr],
        [1, 'value', addr],
      ],
    ),
    mem(
      'read',
      [0x100, 4],
      [
        [0, 'addr', addr],
        [1, 'length', uint(2 ** 53 - 1)],
      ],
    ),
    mem(
      'slice',
      [0x100, 4],
      [
        [0, 'addr', addr],
        [1, 'length', uint(2 ** 53 - 1)],
      ],
    ),
    mem(
      'checkRange',
      [0x100, 4],
      [
        [0, 'addr', addr],
        [1, 'length', uint(2 ** 53 - 1)],
      ],
    ),
    mem(
      'readInto',
      [0x100, new Uint8Array(4)],
      [
        [0, 'addr', addr],
        [1, 'target', bytes],
      ],
    ),
    mem(
      'write',
      [0x100, new Uint8Array(4)],
      [
        [0, 'addr', addr],
        [1, 'bytes', bytes],
      ],
    ),
    {
      method: 'new Queue',
      call: (mm, s) => new Queue(mm as never, s as never),
      args: [r.memory, 16],
      params: [
        [0, 'memory', instance],
        [1, 'maxSize', uint(0xffff).filter(([l]) => l !== '65536')],
      ],
    },
    {
      method: 'Queue.fromState',
      call: (mm, s) => Queue.fromState(mm as never, s as never),
      args: [r.memory, state],
      params: [
        [0, 'memory', instance],
        [
          1,
          'state',
          [
            ['a string', 'x', 'type'],
            ['null', null, 'type'],
            ['missing', MISSING, 'type'],
          ],
        ],
      ],
    },
    ...(['maxSize', 'nextAvail', 'nextUsed', 'size'] as const).map(
      (k): Case => ({
        method: `Queue.fromState (${k})`,
        call: (v) => Queue.fromState(r.memory, withState(k, v) as never),
        args: [state[k]],
        params: [[0, `state.${k}`, uint(0xffff).filter(([l]) => l !== 'missing')]],
      }),
    ),
    ...(['ready', 'eventIdxEnabled'] as const).map(
      (k): Case => ({
        method: `Queue.fromState (${k})`,
        call: (v) => Queue.fromState(r.memory, withState(k, v) as never),
        args: [state[k]],
        params: [[0, `state.${k}`, bool.filter(([l]) => l !== 'missing')]],
      }),
    ),
    // Integers above 0xffff are sizes the crate judges (InvalidMaxSize, InvalidSize; see below).
    guard('setSize', [16], [[0, 'size', uint(0xffff).filter(([l]) => l !== '65536')]]),
    guard('setReady', [true], [[0, 'ready', bool]]),
    guard('setEventIdx', [false], [[0, 'enabled', bool]]),
    ...['setDescTableAddress', 'setAvailRingAddress', 'setUsedRingAddress'].map((n) =>
      guard(
        n,
        [undefined, undefined],
        [
          [0, 'low', uint(0xffffffff, true)],
          [1, 'high', uint(0xffffffff, true)],
        ],
      ),
    ),
    guard('availIdx', [], [[0, 'order', order]]),
    guard('usedIdx', [], [[0, 'order', order]]),
    guard(
      'addUsed',
      [0, 0],
      [
        [0, 'headIndex', uint(0xffff)],
        [1, 'len', uint(0xffffffff)],
      ],
    ),
    guard('setNextAvail', [1], [[0, 'nextAvail', uint(0xffff)]]),
    guard('setNextUsed', [0], [[0, 'nextUsed', uint(0xffff)]]),
    guard('popChains', [new ChainBatch()], [[0, 'batch', [...instance, ['a UsedBatch', new UsedBatch(), 'type']]]]),
    guard('addUsedBatch', [new UsedBatch()], [[0, 'used', [...instance, ['a ChainBatch', new ChainBatch(), 'type']]]]),
    {
      method: 'new ChainBatch',
      call: (a, b) => new ChainBatch(a as never, b as never),
      args: [4, 4],
      params: [
        [0, 'maxChains', [...uint(0xffff).filter(([l]) => l !== 'missing'), ['0', 0, 'range']]],
        [1, 'maxDescriptors', uint(1 << 24).filter(([l]) => l !== 'missing')],
      ],
    },
    {
      method: 'new UsedBatch',
      call: (a) => new UsedBatch(a as never),
      args: [4],
      params: [[0, 'capacity', uint(1 << 24).filter(([l]) => l !== 'missing')]],
    },
    {
      method: 'UsedBatch.push',
      call: (h, l) => new UsedBatch().push(h as never, l as never),
      args: [0, 0],
      params: [
        [0, 'headIndex', uint(0xffff)],
        [1, 'len', uint(0xffffffff)],
      ],
    },
    // A batch holding 4 chains of 2 descriptors: i < 4, j < 8.
    ...(['head', 'descriptorStart', 'descriptorCount', 'status', 'readableBytes', 'writableBytes'] as const).map(
      (n): Case => ({
        method: `ChainBatch.${n}`,
        call: (i) => batch[n](i as never),
        args: [3],
        params: [[0, 'i', uint(3)]],
      }),
    ),
    ...(['addr', 'len', 'flags', 'next', 'isWriteOnly'] as const).map(
      (n): Case => ({
        method: `ChainBatch.${n}`,
        call: (j) => batch[n](j as never),
        args: [7],
        params: [[0, 'j', uint(7)]],
      }),
    ),
    {
      method: 'Reader.read',
      call: (n) => r.chain.reader().read(n as never),
      args: [4],
      params: [[0, 'length', uint(2 ** 53 - 1)]],
    },
    {
      method: 'Reader.readInto',
      call: (t) => r.chain.reader().readInto(t as never),
      args: [new Uint8Array(4)],
      params: [[0, 'target', bytes]],
    },
    {
      method: 'Writer.write',
      call: (b) => r.chain.writer().write(b as never),
      args: [new Uint8Array(4)],
      params: [[0, 'bytes', bytes]],
    },
    {
      method: 'Writer.writeSome',
      call: (b) => r.chain.writer().writeSome(b as never),
      args: [new Uint8Array(4)],
      params: [[0, 'bytes', bytes]],
    },
    {
      method: 'Reader.splitAt',
      call: (n) => r.chain.reader().splitAt(n as never),
      args: [4],
      params: [[0, 'offset', uint(2 ** 53 - 1)]],
    },
    {
      method: 'Writer.splitAt',
      call: (n) => r.chain.writer().splitAt(n as never),
      args: [4],
      params: [[0, 'offset', uint(2 ** 53 - 1)]],
    },
    ...(
      [
        ['writeU8', 0xff],
        ['writeU16', 0xffff],
        ['writeU32', 0xffffffff],
      ] as const
    ).map(
      ([n, max]): Case => ({
        method: `Writer.${n}`,
        call: (v) => r.chain.writer()[n](v as never),
        args: [1],
        params: [[0, 'value', uint(max)]],
      }),
    ),
    {
      method: 'Writer.writeU64',
      call: (v) => r.chain.writer().writeU64(v as never),
      args: [1n],
      params: [[0, 'value', addr]],
    },
  ]
}

/** What a rejected call must leave unchanged. */
function fingerprint(r: ReturnType<typeof rig>): string {
  const g = r.guard
  return JSON.stringify([
    g.nextAvail(),
    g.nextUsed(),
    g.size(),
    g.ready(),
    g.eventIdxEnabled(),
    g.usedIdx(),
    [...r.memory.read(0x100, 8)],
  ])
}

test('every argument of every public method: TypeError or RangeError naming it, and no effect', (t) => {
  const r = rig()
  const problems: string[] = []
  let checked = 0
  for (const c of cases(r)) {
    t.notThrows(() => c.call(...c.args), `${c.method} with valid arguments`)
    for (const [index, name, bads] of c.params) {
      for (const [label, value, expect] of bads) {
        // A missing last argument is left out; a missing earlier one is undefined.
        const args = value === MISSING && index === c.args.length - 1 ? c.args.slice(0, index) : [...c.args]
        if (value !== MISSING || index < c.args.length - 1) args[index] = value === MISSING ? undefined : value
        c.prepare?.()
        const before = fingerprint(r)
        const what = `${c.method}(${name} = ${label})`
        const Class = expect === 'type' ? TypeError : RangeError
        const code = expect === 'type' ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE'
        try {
          c.call(...args)
          problems.push(`${what}: did not throw`)
          continue
        } catch (e) {
          const err = e as Error & { code?: string }
          if (!(err instanceof Class) || err.code !== code)
            problems.push(`${what}: ${err.name} ${err.code}, expected ${Class.name} ${code}: ${err.message}`)
          else if (!err.message.includes(`"${name}"`))
            problems.push(`${what}: the message does not name "${name}": ${err.message}`)
        }
        const after = fingerprint(r)
        if (after !== before) problems.push(`${what}: the rejected call changed ${before} to ${after}`)
        checked++
      }
    }
  }
  t.deepEqual(problems, [])
  t.true(checked > 400, `${checked} bad calls checked`)
  t.log(`${checked} bad calls checked`)
})

test('regression: a rejected setNextAvail keeps the chains popped ahead', (t) => {
  const r = smallRig()
  const heads = offer(r, 3)
  t.is(r.guard.popDescriptorChain()?.headIndex, heads[0])
  t.throws(() => r.guard.setNextAvail('1' as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => r.guard.setNextAvail(65536), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.is(r.guard.nextAvail(), 1)
  t.deepEqual([r.guard.popDescriptorChain()?.headIndex, r.guard.popDescriptorChain()?.headIndex], heads.slice(1))
})

test('sizes above 0xffff are the crate errors InvalidMaxSize and InvalidSize', (t) => {
  const r = smallRig()
  for (const n of [65536, 2 ** 32, 2 ** 53 - 1]) {
    t.throws(() => new Queue(r.memory, n), { instanceOf: VirtioQueueError, code: 'InvalidMaxSize' })
    t.throws(() => r.guard.setSize(n), { instanceOf: VirtioQueueError, code: 'InvalidSize' })
  }
  t.is(r.guard.size(), 16)
})

test('the order argument: a TypeError listing the orderings, also for Object.prototype keys', (t) => {
  const r = smallRig()
  for (const bad of ['toString', '__proto__', 'constructor', 'fast']) {
    const err = t.throws(() => r.guard.availIdx(bad as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
    t.regex(err?.message ?? '', /"order".*'relaxed', 'acquire' or 'seqcst'/)
  }
})

// ---------------------------------------------------------------- released guards

test('a released guard: every method throws GuardReleased, release() is idempotent, the queue locks again', (t) => {
  const r = smallRig()
  offer(r, 4)
  const chain = r.guard.popDescriptorChain()!
  const iter = r.guard.iter()
  r.guard.release()
  r.guard.release()
  t.true(r.guard.released)
  t.is(r.guard.memory, r.memory)
  const g = r.guard
  const calls: Array<[string, () => unknown]> = [
    ['isValid', () => g.isValid()],
    ['reset', () => g.reset()],
    ['maxSize', () => g.maxSize()],
    ['size', () => g.size()],
    ['setSize', () => g.setSize(8)],
    ['ready', () => g.ready()],
    ['setReady', () => g.setReady(true)],
    ['setDescTableAddress', () => g.setDescTableAddress(0)],
    ['setAvailRingAddress', () => g.setAvailRingAddress(0)],
    ['setUsedRingAddress', () => g.setUsedRingAddress(0)],
    ['setEventIdx', () => g.setEventIdx(true)],
    ['eventIdxEnabled', () => g.eventIdxEnabled()],
    ['availIdx', () => g.availIdx()],
    ['usedIdx', () => g.usedIdx()],
    ['addUsed', () => g.addUsed(0, 0)],
    ['enableNotification', () => g.enableNotification()],
    ['disableNotification', () => g.disableNotification()],
    ['needsNotification', () => g.needsNotification()],
    ['nextAvail', () => g.nextAvail()],
    ['nextUsed', () => g.nextUsed()],
    ['setNextAvail', () => g.setNextAvail(0)],
    ['setNextUsed', () => g.setNextUsed(0)],
    ['goToPreviousPosition', () => g.goToPreviousPosition()],
    ['popDescriptorChain', () => g.popDescriptorChain()],
    ['iter', () => g.iter()],
    ['popChains', () => g.popChains(new ChainBatch())],
    ['addUsedBatch (empty)', () => g.addUsedBatch(new UsedBatch())],
    ['iterator.next', () => iter.next()],
  ]
  for (const [name, call] of calls) t.throws(call, { instanceOf: VirtioQueueError, code: 'GuardReleased' }, name)
  const used = new UsedBatch()
  used.push(chain.headIndex, 1)
  t.throws(() => g.addUsedBatch(used), { instanceOf: VirtioQueueError, code: 'GuardReleased' })
  t.is(used.count, 1, 'the entries of a batch given to a released guard are kept')
  // A chain popped before the release is still readable; the queue locks again where it was.
  t.deepEqual([...chain.reader().read(16)], new Array(16).fill(0))
  const again = r.queue.lockWithMemory()
  t.not(again, g)
  t.is(again.nextAvail(), 1)
  t.throws(() => r.queue.lockWithMemory(), { instanceOf: VirtioQueueError, code: 'QueueLocked' })
  again.addUsedBatch(used)
  t.is(again.usedIdx(), 1)
})

// ---------------------------------------------------------------- detached ArrayBuffers

type Detach = (ab: ArrayBuffer) => ArrayBuffer
const hasTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function'
const detachers: Array<[string, Detach]> = [
  ['structuredClone transfer', (ab) => structuredClone(ab, { transfer: [ab] })],
  ...(hasTransfer
    ? [
        [
          'ArrayBuffer.prototype.transfer',
          (ab: ArrayBuffer) => (ab as ArrayBuffer & { transfer(): ArrayBuffer }).transfer(),
        ] as [string, Detach],
      ]
    : []),
]

test('ab.transfer() is checked exactly when this Node has it', (t) => {
  t.is(
    detachers.length,
    hasTransfer ? 2 : 1,
    `Node ${process.version}: ArrayBuffer.prototype.transfer ${hasTransfer ? 'present, both ways to detach run' : 'absent, only structuredClone detaches'}`,
  )
})

for (const [how, detach] of detachers) {
  test(`detached guest memory (${how}): DetachedBuffer everywhere memory is touched, no access to freed memory`, (t) => {
    const ab = new ArrayBuffer(0x10000)
    const r = smallRig(GuestMemory.fromBuffers([{ guestAddress: 0, buffer: ab }]))
    offer(r, 4)
    const chain = r.guard.popDescriptorChain()! // three more are prefetched
    const reader = chain.reader()
    const writer = chain.writer()
    let moved: ArrayBuffer | null = detach(ab)
    t.is(ab.byteLength, 0)
    t.is(r.memory.regions[0]!.buffer.length, 0)
    const m = r.memory
    const g = r.guard
    const touching: Array<[string, () => unknown]> = [
      ['readU8', () => m.readU8(0)],
      ['readU16', () => m.readU16(0)],
      ['readU32', () => m.readU32(0)],
      ['readU64', () => m.readU64(0)],
      ['writeU8', () => m.writeU8(0, 1)],
      ['writeU16', () => m.writeU16(0, 1)],
      ['writeU32', () => m.writeU32(0, 1)],
      ['writeU64', () => m.writeU64(0, 1n)],
      ['loadU16', () => m.loadU16(0)],
      ['storeU16', () => m.storeU16(0, 1)],
      ['read', () => m.read(0, 4)],
      ['readInto', () => m.readInto(0, new Uint8Array(4))],
      ['write', () => m.write(0, new Uint8Array(4))],
      ['slice', () => m.slice(0, 4)],
      ['checkRange', () => m.checkRange(0, 4)],
      ['isValid', () => g.isValid()],
      ['availIdx', () => g.availIdx()],
      ['usedIdx', () => g.usedIdx()],
      ['addUsed', () => g.addUsed(0, 0)],
      ['enableNotification', () => g.enableNotification()],
      ['disableNotification', () => g.disableNotification()],
      ['needsNotification', () => g.needsNotification()],
      ['popChains', () => g.popChains(new ChainBatch())],
      ['iter', () => g.iter()],
      ['chain.reader', () => chain.reader()],
      ['chain.writer', () => chain.writer()],
      ['chain.buffers', () => chain.buffers()],
      ['chain.readableBuffers', () => chain.readableBuffers()],
      ['chain.writableBuffers', () => chain.writableBuffers()],
      ['reader.read', () => reader.read(1)],
      ['reader.readInto', () => reader.readInto(new Uint8Array(4))],
      ['writer.write', () => writer.write(new Uint8Array(4))],
      ['reader.readU8', () => reader.readU8()],
      ['reader.readU16', () => reader.readU16()],
      ['reader.readU32', () => reader.readU32()],
      ['reader.readU64', () => reader.readU64()],
      ['reader.splitAt', () => reader.splitAt(4)],
      ['writer.writeSome', () => writer.writeSome(new Uint8Array(4))],
      ['writer.writeU8', () => writer.writeU8(1)],
      ['writer.writeU16', () => writer.writeU16(1)],
      ['writer.writeU32', () => writer.writeU32(1)],
      ['writer.writeU64', () => writer.writeU64(1n)],
      ['writer.splitAt', () => writer.splitAt(4)],
    ]
    for (let round = 0; round < 2; round++) {
      for (const [name, call] of touching)
        t.throws(call, { instanceOf: VirtioQueueError, code: 'DetachedBuffer' }, `${name} (round ${round})`)
      // What does not touch guest memory still works.
      t.is(g.nextAvail(), 1)
      t.is(r.queue.state().nextAvail, 1)
      // The memory now belongs to the transferred buffer; dropping it lets V8 free it.
      moved = null
    }
    t.is(moved, null)
    t.is(reader.bytesRead(), 0)
    t.is(writer.bytesWritten(), 0)
    t.throws(() => GuestMemory.fromBuffers([{ guestAddress: 0, buffer: ab }]), {
      instanceOf: VirtioQueueError,
      code: 'InvalidRegion',
    })
  })
}

test('a detached Buffer region, and a fromRanges region whose buffer is transferred', (t) => {
  const buf = Buffer.alloc(0x10000)
  const r = smallRig(GuestMemory.fromBuffers([{ guestAddress: 0, buffer: buf }]))
  offer(r, 1)
  structuredClone(buf.buffer, { transfer: [buf.buffer as ArrayBuffer] })
  t.throws(() => r.guard.popDescriptorChain(), { instanceOf: VirtioQueueError, code: 'DetachedBuffer' })
  t.throws(() => r.memory.read(0x4000, 16), { instanceOf: VirtioQueueError, code: 'DetachedBuffer' })

  // fromRanges memory is V8-owned (the README's threat model): a transfer takes it along,
  // and what stays behind refuses every access, native or JavaScript.
  const n = smallRig()
  offer(n, 1)
  const moved = structuredClone(n.memory.regions[0]!.buffer.buffer, {
    transfer: [n.memory.regions[0]!.buffer.buffer as ArrayBuffer],
  })
  t.true(moved.byteLength > n.memory.regions[0]!.size, 'the whole allocation moved')
  t.throws(() => n.guard.popDescriptorChain(), { instanceOf: VirtioQueueError, code: 'DetachedBuffer' })
  t.throws(() => n.guard.addUsed(0, 7), { instanceOf: VirtioQueueError, code: 'DetachedBuffer' })
  t.throws(() => n.memory.readU8(0x4000), { instanceOf: VirtioQueueError, code: 'DetachedBuffer' })
})

// ---------------------------------------------------------------- native panics

test('a Rust panic becomes VirtioQueueError Panic, and the addon keeps working', (t) => {
  const binding = (require('../lib/binding') as { loadBinding(): { forcePanicForTesting(): never } }).loadBinding()
  for (let i = 0; i < 3; i++) {
    const err = t.throws(() => binding.forcePanicForTesting(), { instanceOf: VirtioQueueError, code: 'Panic' })
    t.regex(err?.message ?? '', /panic.*forced panic for testing/i)
  }
  const r = smallRig()
  const [head] = offer(r, 1)
  const c = r.guard.popDescriptorChain()!
  t.is(c.headIndex, head)
  r.guard.addUsed(c.headIndex, 3)
  t.is(r.guard.usedIdx(), 1)
})

test('Queue.fromState with states no queue has: the crate errors and InvalidState', (t) => {
  const r = smallRig()
  const state = r.queue.state()
  const bad: Array<[Partial<typeof state> | Record<string, unknown>, string]> = [
    [{ maxSize: 3 }, 'InvalidMaxSize'],
    [{ maxSize: 0 }, 'InvalidMaxSize'],
    [{ size: 32 }, 'InvalidSize'],
    [{ size: 6 }, 'InvalidSize'],
    [{ descTable: 8 }, 'InvalidDescTableAlign'],
    [{ availRing: 1 }, 'InvalidAvailRingAlign'],
    [{ usedRing: 2 }, 'InvalidUsedRingAlign'],
    [{ descTable: -16 }, 'InvalidState'],
    [{ usedRing: '18446744073709551616' }, 'InvalidState'],
    [{ availRing: '1e3' }, 'InvalidState'],
    [{ descTable: 1.5 }, 'InvalidState'],
    [{ usedRing: null }, 'InvalidState'],
  ]
  for (const [change, code] of bad) {
    t.throws(
      () => Queue.fromState(r.memory, { ...state, ...change } as typeof state),
      { instanceOf: VirtioQueueError, code },
      JSON.stringify(change),
    )
  }
  // Addresses as decimal strings (how state() writes those above 2^53) and bigints are accepted.
  const q = Queue.fromState(r.memory, { ...state, descTable: '18446744073709551600', usedRing: (2n ** 63n) as never })
  t.like(q.state(), { descTable: '18446744073709551600', usedRing: '9223372036854775808' })
})

test('the raw binding refuses numbers that name no live queue, and anchors in their place', (t) => {
  // The binding the package loaded (lib/, as '..' is), not a second load through src/.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { native } = require('../lib/native') as { native: NativeBinding }
  const memory = GuestMemory.fromRanges([[0, 0x10000]])
  const [h, anchor] = native.queueNew((memory as unknown as { handle: MemoryHandle }).handle, 16)
  t.is(native.maxSize(h), 16)
  const notLive = {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_TYPE',
    message: /"queue" argument must be a live queue handle/,
  }
  // Another slot, another generation of this slot, beyond the table, the largest safe integer.
  for (const forged of [h + 1, h + 2 ** 24, 2 ** 40, 2 ** 53 - 1])
    t.throws(() => native.maxSize(forged as QueueHandle), notLive, `${forged}`)
  for (const bad of [-1, 0.5, 2 ** 53])
    t.throws(() => native.maxSize(bad as QueueHandle), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => native.maxSize(anchor as unknown as QueueHandle), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_TYPE',
  })
  t.is(native.maxSize(h), 16, 'the queue itself is untouched')
})

test('addUsed through the call area validates exactly as the ordinary call', (t) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { native, CALL_AREA } = require('../lib/native') as { native: NativeBinding; CALL_AREA: Float64Array | null }
  t.truthy(CALL_AREA, 'Node allows external ArrayBuffers here')
  const area = CALL_AREA!
  t.is(area.length, 8) // addUsed takes three slots; chainFileIo six
  const r = smallRig()
  const h = (r.queue as unknown as { handle: QueueHandle }).handle
  const viaArea =
    (...args: number[]) =>
    () => {
      area.set(args)
      native.addUsedArea()
    }
  const viaArgs =
    (...args: number[]) =>
    () =>
      native.addUsed(args[0] as QueueHandle, args[1]!, args[2]!)
  const cases: Array<[number[], object]> = [
    [
      [h, 70000, 1],
      { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE', message: /"headIndex".*65535; received 70000/ },
    ],
    [[h, 1.5, 1], { instanceOf: RangeError, message: /"headIndex"/ }],
    [[h, 0, -1], { instanceOf: RangeError, message: /"len".*received -1/ }],
    [[h, 0, NaN], { instanceOf: RangeError, message: /"len".*received NaN/ }],
    [[h, 0, 2 ** 32], { instanceOf: RangeError, message: /"len"/ }],
    [[NaN, 0, 1], { instanceOf: RangeError, message: /"queue"/ }],
    [[h + 1, 0, 1], { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /live queue handle/ }],
    [[h, 99, 1], { instanceOf: VirtioQueueError, code: 'InvalidDescriptorIndex' }],
  ]
  const before = r.guard.nextUsed()
  for (const [args, expected] of cases) {
    const a = t.throws(viaArea(...args), expected, `area ${args}`)
    const b = t.throws(viaArgs(...args), expected, `args ${args}`)
    t.is(a?.message, b?.message, `same message for ${args}`)
  }
  t.is(r.guard.nextUsed(), before, 'no rejected call added an entry')
  viaArea(h, 3, 77)()
  t.is(r.guard.nextUsed(), (before + 1) & 0xffff)
  t.deepEqual(r.guard.memory.readU32(r.layout.usedRing + 4 + 8 * before), 3)
  t.deepEqual(r.guard.memory.readU32(r.layout.usedRing + 8 + 8 * before), 77)
})
