// Generators for fuzz-ops: a well-formed guest (a descriptor table of chains,
// direct and indirect, over buffers that may span two adjacent regions, and an
// avail ring naming their heads, with the odd bad head) and a random sequence
// of every QueueGuard operation and of chain reads and writes.
import fc from 'fast-check'

export interface ChainSpec {
  bufs: Array<{ len: number; write: boolean }>
  indirect: boolean
}

export type OpSpec =
  | { k: 'publish'; n: number }
  | { k: 'pop' }
  | { k: 'iter'; brk: number; back: boolean }
  | { k: 'batch'; chains: number; descs: number }
  | { k: 'addUsed'; pick: number; len: number; bad: boolean }
  | { k: 'addUsedBatch'; entries: Array<{ pick: number; len: number; bad: boolean }> }
  /** With rel, nextAvail becomes the avail idx minus v % (size + 1): a valid position. */
  | { k: 'setNextAvail'; v: number; rel: boolean }
  | { k: 'setNextUsed'; v: number }
  | { k: 'prev' }
  | { k: 'reset' }
  | { k: 'configure'; sizeShift: number }
  | { k: 'setSize'; v: number }
  | { k: 'setReady'; b: boolean }
  | { k: 'setEventIdx'; b: boolean }
  | { k: 'notify'; which: 'enable' | 'disable' | 'needs' }
  | { k: 'idx'; order: 'relaxed' | 'acquire' | 'seqcst' }
  | { k: 'snapshot' }
  | { k: 'relock' }
  | { k: 'isValid' }
  | { k: 'io'; pick: number; chunks: number[]; write: boolean; into: boolean }
  | { k: 'views'; pick: number }
  | { k: 'usedEvent'; v: number }

export interface OpsSpec {
  maxSize: number
  /** Split the data area into two adjacent regions (buffers then span both). */
  split: boolean
  shared: boolean
  chains: ChainSpec[]
  /** Avail slot i names chain heads[i % n] (modulo the chains), or a raw index when >= 1000. */
  heads: number[]
  /** Odd multiplier and offset of the permutation that scatters descriptors in the table. */
  stride: number
  rot: number
  /** Chains made available before the first step (at most maxSize). */
  initial: number
  ops: OpSpec[]
}

const u16 = fc.integer({ min: 0, max: 0xffff })
const pick = fc.nat(31)
const len = fc.oneof({ weight: 4, arbitrary: fc.nat(4096) }, { weight: 1, arbitrary: fc.constantFrom(0, 0xffffffff) })

const opArb: fc.Arbitrary<OpSpec> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constant('publish' as const),
      n: fc.oneof(
        { weight: 30, arbitrary: fc.integer({ min: 1, max: 8 }) },
        { weight: 1, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: u16 },
      ),
    }),
  },
  { weight: 5, arbitrary: fc.constant({ k: 'pop' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant('iter' as const), brk: fc.integer({ min: 1, max: 8 }), back: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('batch' as const),
      chains: fc.integer({ min: 1, max: 8 }),
      descs: fc.integer({ min: 1, max: 12 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('addUsed' as const),
      pick,
      len,
      bad: fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('addUsedBatch' as const),
      entries: fc.array(
        fc.record({
          pick,
          len,
          bad: fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
        }),
        { maxLength: 6 },
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('setNextAvail' as const),
      v: u16,
      rel: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('setNextUsed' as const), v: u16 }) },
  { weight: 1, arbitrary: fc.constant({ k: 'prev' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'reset' as const }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('configure' as const), sizeShift: fc.nat(2) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('setSize' as const),
      v: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 8, 16, 24, 32, 64, 128), u16),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('setReady' as const),
      b: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('setEventIdx' as const), b: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('notify' as const),
      which: fc.constantFrom('enable' as const, 'disable' as const, 'needs' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('idx' as const),
      order: fc.constantFrom('relaxed' as const, 'acquire' as const, 'seqcst' as const),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ k: 'snapshot' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'relock' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'isValid' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('io' as const),
      pick,
      chunks: fc.array(fc.oneof(fc.nat(16), fc.nat(64), fc.nat(600)), { minLength: 1, maxLength: 5 }),
      write: fc.boolean(),
      into: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('views' as const), pick }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('usedEvent' as const), v: u16 }) },
)

const chainArb: fc.Arbitrary<ChainSpec> = fc.record({
  bufs: fc.array(
    fc.record({
      len: fc.oneof({ weight: 4, arbitrary: fc.nat(300) }, { weight: 1, arbitrary: fc.constant(0) }),
      write: fc.boolean(),
    }),
    {
      minLength: 1,
      maxLength: 5,
    },
  ),
  indirect: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
})

export const opsArb: fc.Arbitrary<OpsSpec> = fc.record({
  maxSize: fc.constantFrom(1, 2, 4, 8, 16, 32, 64),
  split: fc.boolean(),
  shared: fc.boolean(),
  chains: fc.array(chainArb, { minLength: 1, maxLength: 24 }),
  heads: fc.array(
    fc.oneof(
      { weight: 12, arbitrary: fc.nat(999) },
      { weight: 1, arbitrary: fc.integer({ min: 1000, max: 1000 + 0xffff }) },
    ),
    { minLength: 1, maxLength: 16 },
  ),
  stride: fc.nat(0x7fff).map((n) => 2 * n + 1),
  rot: u16,
  initial: fc.nat(64),
  ops: fc.array(opArb, { minLength: 1, maxLength: 100, size: 'large' }),
})
