// Hostile guests, property-based: random descriptor tables and rings aimed at
// the edges (see helpers/fuzz-arb.ts). Invariants, per case: no crash or hang;
// every failure is a VirtioQueueError, RangeError or TypeError with a code;
// popping writes nothing; the device writes nothing outside guest memory
// (canaries around every region) and nothing in it but the used ring and the
// device-writable buffers; chains, stop reasons, used entries and
// notification results match an independent model (helpers/fuzz-ref.ts).
//
// VIRTIO_QUEUE_FUZZ_RUNS=n runs n cases (a campaign; helpers/fuzz-campaign.ts
// runs beyond ava's timeout), VIRTIO_QUEUE_FUZZ_SEED=s replays a seed.
import test from 'ava'
import fc from 'fast-check'

import { GuestMemory, VirtioQueueError } from '..'
import { deviceArb, fuzzRuns, fuzzSeed, guestArb, type DeviceSpec, type GuestSpec } from './helpers/fuzz-arb'
import { guestStats, runGuestCase } from './helpers/fuzz-guest'
import { smallRig } from './helpers/fuzz-rig'

const device: DeviceSpec = { pops: [{ k: 'pop' }], io: ['rw'], notify: ['enable'], usedLens: [true] }
const guest = (over: Partial<GuestSpec>): GuestSpec => ({
  layout: { regions: [{ size: 0x2000, gap: 0 }], top: false, shared: false, fill: 0 },
  size: 4,
  maxShift: 0,
  place: { k: 'packed', r: 0, off: 0 },
  descs: [],
  tables: [],
  availFlags: 0,
  heads: [0],
  delta: { k: 'mod', v: 1 },
  usedEvent: 0,
  nextAvail: 0,
  nextUsed: 0,
  eventIdx: false,
  ready: true,
  ...over,
})

/** Counterexamples found so far, replayed first in every run. */
const regressions: Array<[GuestSpec, DeviceSpec]> = [
  // A 16-byte buffer 15 bytes before the end of a region ending at 2^53: the range check
  // rounded 2^53 + 1 to 2^53 and took the buffer for guest memory.
  [
    guest({
      layout: { regions: [{ size: 48, gap: 0 }], top: true, shared: false, fill: 1 },
      size: 1,
      nextAvail: 65534,
      delta: { k: 'mod', v: 9 },
      descs: [{ k: 'plain', addr: { k: 'end', r: 0, back: 15 }, len: 16, flags: 0, next: { k: 'succ' } }],
    }),
    device,
  ],
]

test('hostile guest: chains, errors and writes match the model, canaries intact', (t) => {
  const seed = fuzzSeed()
  fc.assert(
    fc.property(guestArb, deviceArb, (g, d) => runGuestCase(g, d)),
    {
      numRuns: fuzzRuns(400),
      examples: regressions,
      ...(seed === undefined ? {} : { seed }),
    },
  )
  t.pass('every case held (fc.assert throws the shrunk counterexample otherwise)')
})

test('edge cases by hand: loops, indirect in indirect, misaligned indirect tables, idx jumps, rings at region ends', (t) => {
  const plain = (len: number, flags: number, next: number) => ({
    k: 'plain' as const,
    addr: { k: 'in' as const, r: 0, off: 0x800 },
    len,
    flags,
    next: { k: 'raw' as const, v: next },
  })
  const indirect = (adj: number) => ({ k: 'indirect' as const, table: 0, adj, flags: 0, next: { k: 'succ' as const } })
  // Each case, and the event (helpers/fuzz-guest.ts guestStats) it must produce.
  const cases: Array<[GuestSpec, string]> = [
    [guest({ descs: [plain(8, 1, 1), plain(8, 1, 0)] }), 'chain InvalidChain'],
    [guest({ descs: [plain(8, 1, 9)] }), 'chain InvalidDescriptorIndex'],
    [guest({ heads: [300] }), 'chain InvalidDescriptorIndex'],
    [guest({ descs: [plain(0xffffffff, 1, 1), plain(1, 0, 0)] }), 'chain DescriptorChainOverflow'],
    [
      guest({
        descs: [indirect(0)],
        tables: [{ at: { k: 'in', r: 0, off: 0x400 }, entries: [indirect(0)], huge: false }],
      }),
      'chain InvalidIndirectDescriptor (indirect)',
    ],
    [
      guest({
        descs: [indirect(8)],
        tables: [{ at: { k: 'in', r: 0, off: 0x400 }, entries: [plain(4, 0, 0)], huge: false }],
      }),
      'chain InvalidIndirectDescriptorTable',
    ],
    [
      guest({
        descs: [indirect(0)],
        tables: [{ at: { k: 'in', r: 0, off: 0x400 }, entries: [plain(4, 1, 0)], huge: true }],
      }),
      'chain InvalidChain (indirect)',
    ],
    [
      guest({
        descs: [indirect(0)],
        tables: [{ at: { k: 'in', r: 0, off: 0x400 }, entries: [plain(4, 0, 0)], huge: false }],
      }),
      'chain complete (indirect)',
    ],
    [guest({ delta: { k: 'raw', v: 5 } }), 'pop error InvalidAvailRingIndex'],
    [
      guest({ place: { k: 'free', desc: { k: 'end', r: 0 }, avail: { k: 'end', r: 0 }, used: { k: 'end', r: 0 } } }),
      'addUsed ok',
    ],
    [
      guest({
        heads: [3],
        place: {
          k: 'free',
          desc: { k: 'straddle', r: 0 },
          avail: { k: 'fit', r: 0, off: 0x200 },
          used: { k: 'fit', r: 0, off: 0x400 },
        },
      }),
      'chain GuestMemory',
    ],
    [
      guest({
        place: {
          k: 'free',
          desc: { k: 'fit', r: 0, off: 0x200 },
          avail: { k: 'gap', r: 0 },
          used: { k: 'fit', r: 0, off: 0x400 },
        },
      }),
      'pop error GuestMemory',
    ],
    [
      guest({
        place: {
          k: 'free',
          desc: { k: 'fit', r: 0, off: 0x200 },
          avail: { k: 'fit', r: 0, off: 0x400 },
          used: { k: 'top', back: 1 },
        },
      }),
      'addUsed AddressOverflow',
    ],
    [
      guest({
        layout: {
          regions: [
            { size: 0x800, gap: 0 },
            { size: 0x800, gap: 0 },
            { size: 0x800, gap: 64 },
          ],
          top: true,
          shared: true,
          fill: 7,
        },
        descs: [plain(0x900, 2, 0)],
      }),
      'writer ok',
    ],
    [
      guest({ descs: [{ k: 'plain', addr: { k: 'abs', a: 2n ** 64n - 8n }, len: 16, flags: 2, next: { k: 'succ' } }] }),
      'writer InvalidChain',
    ],
  ]
  for (const [c, event] of cases) {
    for (const eventIdx of [false, true]) {
      const before = guestStats[event] ?? 0
      const what = `${event}: ${JSON.stringify(c, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`
      t.notThrows(() => runGuestCase({ ...c, eventIdx }, device), what)
      t.true((guestStats[event] ?? 0) > before, what)
    }
  }
})

test('regression: ranges that run past 2^53 are not guest memory', (t) => {
  const top = 2 ** 53
  const mem = GuestMemory.fromBuffers([{ guestAddress: top - 48, buffer: new ArrayBuffer(48) }])
  t.false(mem.checkRange(top - 15, 16))
  t.true(mem.checkRange(top - 16, 16))
  t.throws(() => mem.slice(top - 15, 16), { instanceOf: RangeError, code: 'InvalidGuestAddress' })
  t.throws(() => mem.readU32(top - 3), { instanceOf: RangeError, code: 'InvalidGuestAddress' })
  t.throws(() => mem.write(top - 1, new Uint8Array(2)), { instanceOf: RangeError, code: 'InvalidGuestAddress' })
  t.is(mem.slice(top - 16, 16).length, 16)
  // A chain whose buffer does: reader() and writer() refuse it.
  const r = smallRig()
  r.driver.writeDescriptor(0, { addr: top - 15, len: 16, flags: 0, next: 0 })
  r.driver.writeDescriptor(1, { addr: top - 15, len: 16, flags: 2, next: 0 })
  r.driver.writeAvailEntry(0, 0)
  r.driver.writeAvailEntry(1, 1)
  r.driver.setAvailIdx(2)
  t.throws(() => r.guard.popDescriptorChain()!.reader(), { instanceOf: VirtioQueueError, code: 'InvalidChain' })
  t.throws(() => r.guard.popDescriptorChain()!.writer(), { instanceOf: VirtioQueueError, code: 'InvalidChain' })
})
