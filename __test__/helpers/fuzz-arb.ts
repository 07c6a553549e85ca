// fast-check generators for hostile guests, aimed at the edges: chains that
// loop or point past the queue size, huge and zero lengths, addresses near
// 2^64 and at region ends, indirect tables in indirect tables, indirect
// lengths that are not multiples of 16, avail idx far ahead, rings that
// straddle or end at the end of a region, several regions with gaps.
//
// The specs are abstract (region numbers, offsets, fractions), so they shrink
// well; fuzz-guest.ts resolves them against the generated layout.
import fc from 'fast-check'

import { INDIRECT, NEXT, U64_MAX, WRITE } from './fuzz-ref'

/** Number of cases per property: VIRTIO_QUEUE_FUZZ_RUNS when set (a campaign), else `ci`. */
export function fuzzRuns(ci: number): number {
  const env = Number(process.env.VIRTIO_QUEUE_FUZZ_RUNS)
  return Number.isSafeInteger(env) && env > 0 ? env : ci
}

/** A fixed seed per CI run when VIRTIO_QUEUE_FUZZ_SEED is set (to replay), else random. */
export function fuzzSeed(): number | undefined {
  const env = Number(process.env.VIRTIO_QUEUE_FUZZ_SEED)
  return Number.isSafeInteger(env) ? env : undefined
}

export interface RegionLayoutSpec {
  size: number
  /** Bytes between the previous region's end (or the base) and this region. */
  gap: number
}

export interface LayoutSpec {
  regions: RegionLayoutSpec[]
  /** Place the regions so the last ends (within 7 bytes) at 2^53, the address limit. */
  top: boolean
  /** Back guest memory with SharedArrayBuffers. */
  shared: boolean
  /** Background bytes of guest memory: 0 for zeros, else a generator seed. */
  fill: number
}

/** Where a ring (or a table) goes. */
export type PlaceSpec =
  | { k: 'fit'; r: number; off: number }
  | { k: 'end'; r: number }
  | { k: 'straddle'; r: number }
  | { k: 'gap'; r: number }
  | { k: 'zero' }
  | { k: 'top'; back: number }
  | { k: 'any'; a: bigint }

export type QueuePlaceSpec =
  | { k: 'packed'; r: number; off: number }
  | { k: 'free'; desc: PlaceSpec; avail: PlaceSpec; used: PlaceSpec }

/** A buffer address: in a region (fitting its length when it can), at a region's end, past it, or absolute. */
export type AddrSpec =
  | { k: 'in'; r: number; off: number }
  | { k: 'end'; r: number; back: number }
  | { k: 'over'; r: number; fwd: number }
  | { k: 'abs'; a: bigint }

export type NextSpec = { k: 'succ' } | { k: 'mod'; v: number } | { k: 'raw'; v: number }

export type DescSpec =
  | { k: 'plain'; addr: AddrSpec; len: number; flags: number; next: NextSpec }
  | { k: 'indirect'; table: number; adj: number; flags: number; next: NextSpec }
  | { k: 'raw'; bytes: Uint8Array }

export interface TableSpec {
  at: AddrSpec
  entries: DescSpec[]
  /** Declare 65535 entries (the most the crate accepts) instead of the number written. */
  huge: boolean
}

export interface GuestSpec {
  layout: LayoutSpec
  size: number
  /** maxSize = size << maxShift (at most 32768). */
  maxShift: number
  place: QueuePlaceSpec
  descs: DescSpec[]
  tables: TableSpec[]
  availFlags: number
  heads: number[]
  /** How far the avail idx is ahead of nextAvail: a number (taken modulo size + 1) or a raw u16. */
  delta: { k: 'mod'; v: number } | { k: 'raw'; v: number }
  usedEvent: number
  nextAvail: number
  nextUsed: number
  eventIdx: boolean
  ready: boolean
}

export type PopStep = { k: 'pop' } | { k: 'iter'; brk: number } | { k: 'batch'; chains: number; descs: number }
export type IoStep = 'rw' | 'buffers' | 'none'
export type NotifyStep = 'enable' | 'disable' | 'needs' | 'none'

export interface DeviceSpec {
  pops: PopStep[]
  io: IoStep[]
  notify: NotifyStep[]
  /** addUsed with the bytes written (true) or this length. */
  usedLens: Array<number | true>
}

const u16 = fc.integer({ min: 0, max: 0xffff })
const u32 = fc.integer({ min: 0, max: 0xffffffff })
const regionIndex = fc.nat(7)

export const layoutArb: fc.Arbitrary<LayoutSpec> = fc.record({
  regions: fc.array(
    fc.record({
      size: fc.oneof(
        { weight: 5, arbitrary: fc.integer({ min: 1, max: 0x600 }).map((n) => 8 * n) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 0x3000 }) },
      ),
      gap: fc.oneof(
        { weight: 3, arbitrary: fc.constant(0) },
        { weight: 2, arbitrary: fc.integer({ min: 1, max: 512 }).map((n) => 8 * n) },
        { weight: 1, arbitrary: fc.constant(2 ** 30) },
      ),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  top: fc.boolean(),
  shared: fc.boolean(),
  fill: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0x7fffffff })),
})

const placeArb: fc.Arbitrary<PlaceSpec> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ k: fc.constant('fit' as const), r: regionIndex, off: u32 }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('end' as const), r: regionIndex }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('straddle' as const), r: regionIndex }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('gap' as const), r: regionIndex }) },
  { weight: 1, arbitrary: fc.constant({ k: 'zero' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('top' as const), back: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('any' as const), a: fc.bigInt(0n, U64_MAX) }) },
)

const queuePlaceArb: fc.Arbitrary<QueuePlaceSpec> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('packed' as const), r: regionIndex, off: u32 }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant('free' as const), desc: placeArb, avail: placeArb, used: placeArb }),
  },
)

const addrArb: fc.Arbitrary<AddrSpec> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ k: fc.constant('in' as const), r: regionIndex, off: u32 }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('end' as const), r: regionIndex, back: fc.nat(64) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('over' as const), r: regionIndex, fwd: fc.nat(64) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('abs' as const),
      a: fc.oneof(
        fc.constantFrom(0n, 2n ** 53n - 8n, 2n ** 53n, 2n ** 63n, U64_MAX - 15n, U64_MAX),
        fc.bigInt(0n, U64_MAX),
      ),
    }),
  },
)

const lenArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 64 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 0x2000 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 15, 16, 17, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff) },
  { weight: 1, arbitrary: u32 },
)

const flagsArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(0, NEXT, WRITE, NEXT | WRITE) },
  { weight: 1, arbitrary: fc.constantFrom(INDIRECT, INDIRECT | NEXT, INDIRECT | WRITE) },
  { weight: 1, arbitrary: u16 },
)

const nextArb: fc.Arbitrary<NextSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ k: 'succ' as const }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('mod' as const), v: u16 }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('raw' as const), v: u16 }) },
)

const plainArb: fc.Arbitrary<DescSpec> = fc.record({
  k: fc.constant('plain' as const),
  addr: addrArb,
  len: lenArb,
  flags: flagsArb,
  next: nextArb,
})
const indirectArb: fc.Arbitrary<DescSpec> = fc.record({
  k: fc.constant('indirect' as const),
  table: fc.nat(3),
  adj: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 8, 15, -16, 16) }),
  flags: fc.constantFrom(0, NEXT, WRITE),
  next: nextArb,
})
const rawArb: fc.Arbitrary<DescSpec> = fc.record({
  k: fc.constant('raw' as const),
  bytes: fc.uint8Array({ minLength: 16, maxLength: 16 }),
})

const descArb: fc.Arbitrary<DescSpec> = fc.oneof(
  { weight: 8, arbitrary: plainArb },
  { weight: 2, arbitrary: indirectArb },
  { weight: 1, arbitrary: rawArb },
)

const tableArb: fc.Arbitrary<TableSpec> = fc.record({
  at: addrArb,
  entries: fc.array(descArb, { maxLength: 12 }),
  huge: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
})

export const guestArb: fc.Arbitrary<GuestSpec> = fc.record({
  layout: layoutArb,
  size: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(1, 2, 4, 8, 16) },
    { weight: 2, arbitrary: fc.constantFrom(32, 64, 128, 256) },
  ),
  maxShift: fc.nat(2),
  place: queuePlaceArb,
  descs: fc.array(descArb, { maxLength: 48 }),
  tables: fc.array(tableArb, { maxLength: 4 }),
  availFlags: fc.oneof(fc.constant(0), u16),
  heads: fc.array(fc.oneof({ weight: 8, arbitrary: fc.nat(255) }, { weight: 1, arbitrary: u16 }), { maxLength: 64 }),
  delta: fc.oneof(
    { weight: 8, arbitrary: fc.record({ k: fc.constant('mod' as const), v: fc.nat(256) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('raw' as const), v: u16 }) },
  ),
  usedEvent: u16,
  nextAvail: fc.oneof(fc.constant(0), fc.constantFrom(0xfffe, 0xffff, 0x7fff), u16),
  nextUsed: fc.oneof(fc.constant(0), fc.constantFrom(0xfffe, 0xffff), u16),
  eventIdx: fc.boolean(),
  ready: fc.oneof({ weight: 12, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
})

export const deviceArb: fc.Arbitrary<DeviceSpec> = fc.record({
  pops: fc.array(
    fc.oneof(
      fc.constant({ k: 'pop' as const }),
      fc.record({ k: fc.constant('iter' as const), brk: fc.integer({ min: 1, max: 8 }) }),
      fc.record({
        k: fc.constant('batch' as const),
        chains: fc.integer({ min: 1, max: 8 }),
        descs: fc.integer({ min: 1, max: 16 }),
      }),
    ),
    { minLength: 1, maxLength: 6 },
  ),
  io: fc.array(fc.constantFrom<IoStep>('rw', 'rw', 'buffers', 'none'), { minLength: 1, maxLength: 6 }),
  notify: fc.array(fc.constantFrom<NotifyStep>('enable', 'disable', 'needs', 'none', 'none'), {
    minLength: 1,
    maxLength: 6,
  }),
  usedLens: fc.array(fc.oneof({ weight: 4, arbitrary: fc.constant(true as const) }, { weight: 1, arbitrary: u32 }), {
    minLength: 1,
    maxLength: 4,
  }),
})
