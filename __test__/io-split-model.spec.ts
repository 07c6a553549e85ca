// Splits, typed fields and partial copies against a model: the chain's readable (or
// writable) bytes as one flat array, each reader (writer) an interval of it with a
// cursor. Random chains (empty descriptors, a buffer across a region border, an indirect
// table) and random operation sequences on random parts must agree with the model.
import test from 'ava'
import fc from 'fast-check'

import { GuestMemory, type Reader, VirtioQueueError, type Writer } from '..'
import { fuzzRuns, fuzzSeed } from './helpers/fuzz-arb'
import { makeRig } from './helpers/queue-setup'

/** Two regions meeting at BORDER; buffers are laid out from BORDER - 64. */
const BORDER = 0x90000
const FIELD = { u8: 1, u16: 2, u32: 4, u64: 8 } as const
type Field = keyof typeof FIELD

type Op =
  | { k: 'split'; part: number; at: number }
  | { k: 'chunk'; part: number; n: number; some: boolean }
  | { k: 'field'; part: number; f: Field }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('split' as const), part: fc.nat(), at: fc.nat({ max: 1000 }) }),
  fc.record({ k: fc.constant('chunk' as const), part: fc.nat(), n: fc.nat({ max: 40 }), some: fc.boolean() }),
  fc.record({ k: fc.constant('field' as const), part: fc.nat(), f: fc.constantFrom<Field>('u8', 'u16', 'u32', 'u64') }),
)

const caseArb = fc.record({
  lens: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 24 })), { minLength: 1, maxLength: 8 }),
  write: fc.boolean(),
  indirect: fc.boolean(),
  ops: fc.array(opArb, { maxLength: 30 }),
})

interface Part {
  s: Reader | Writer
  /** Model: the part's bytes are flat[pos .. end). */
  pos: number
  end: number
  used: number
}

function run(lens: number[], write: boolean, indirect: boolean, ops: Op[]): void {
  const memory = GuestMemory.fromRanges([
    [0, BORDER],
    [BORDER, 0x10000],
  ])
  const { guard, driver } = makeRig({ size: 16, memory })
  // Buffers back to back with 3 spare bytes between, from 64 bytes before the border, so
  // some straddle it; a 4-byte buffer of the other direction (readable ones come first), for
  // the cursor to skip.
  let addr = BORDER - 64
  const mine: Array<{ addr: number; len: number; writable: boolean }> = []
  for (const len of lens) {
    mine.push({ addr, len, writable: write })
    addr += len + 3
  }
  const other = { addr: 0x80000, len: 4, writable: !write }
  const descs = write ? [other, ...mine] : [...mine, other]
  const total = lens.reduce((a, b) => a + b, 0)
  const flat = Buffer.from(Array.from({ length: total }, (_, i) => (i * 13 + 7) & 0xff))
  const model = Buffer.alloc(total) // what the writers wrote
  let o = 0
  for (const d of mine) {
    if (!write) memory.write(d.addr, flat.subarray(o, o + d.len))
    o += d.len
  }
  driver.addChain(descs, indirect ? { indirect: true } : {})
  const chain = guard.popDescriptorChain()!
  const first = write ? chain.writer() : chain.reader()
  const parts: Part[] = [{ s: first, pos: 0, end: total, used: 0 }]
  const fail = (msg: string) => {
    throw new Error(`${msg} (lens ${lens}, ${write ? 'write' : 'read'}, indirect ${indirect})`)
  }
  const done = (p: Part) => ('bytesRead' in p.s ? p.s.bytesRead() : p.s.bytesWritten())
  for (const op of ops) {
    const p = parts[op.part % parts.length]!
    const left = p.end - p.pos
    if (op.k === 'split') {
      const at = op.at % (left + 2) // now and then one past the end
      if (at > left) {
        try {
          p.s.splitAt(at)
          fail(`splitAt(${at}) with ${left} left did not throw`)
        } catch (e) {
          if (!(e instanceof VirtioQueueError) || e.code !== 'SplitOutOfBounds') throw e
        }
        continue
      }
      const rest = p.s.splitAt(at)
      parts.push({ s: rest, pos: p.pos + at, end: p.end, used: 0 })
      p.end = p.pos + at
    } else {
      const n = op.k === 'field' ? FIELD[op.f] : op.n
      const fits = n <= left
      const moved = op.k === 'chunk' && op.some ? Math.min(n, left) : fits ? n : 0
      const want = write ? flat.subarray(p.pos, p.pos + moved) : null
      let got: Buffer | null = null
      try {
        if (op.k === 'chunk') {
          const data = Buffer.alloc(n, 0xee)
          flat.copy(data, 0, p.pos, Math.min(total, p.pos + n))
          if (write) {
            const w = p.s as Writer
            const k = op.some ? w.writeSome(data) : w.write(data)
            if (k !== moved) fail(`wrote ${k}, expected ${moved}`)
          } else if (op.some) {
            const into = Buffer.alloc(n)
            const k = (p.s as Reader).readInto(into)
            if (k !== moved) fail(`readInto gave ${k}, expected ${moved}`)
            got = into.subarray(0, k)
          } else {
            got = (p.s as Reader).read(n)
          }
        } else if (write) {
          const w = p.s as Writer
          const v = flat.subarray(p.pos, p.pos + n)
          const le = Buffer.concat([v, Buffer.alloc(8)])
          if (op.f === 'u8') w.writeU8(le[0]!)
          else if (op.f === 'u16') w.writeU16(le.readUInt16LE(0))
          else if (op.f === 'u32') w.writeU32(le.readUInt32LE(0))
          else w.writeU64(le.readBigUInt64LE(0))
        } else {
          const r = p.s as Reader
          const b = Buffer.alloc(8)
          if (op.f === 'u8') b.writeUInt8(r.readU8())
          else if (op.f === 'u16') b.writeUInt16LE(r.readU16())
          else if (op.f === 'u32') b.writeUInt32LE(r.readU32())
          else b.writeBigUInt64LE(r.readU64())
          got = b.subarray(0, n)
        }
        if (moved === 0 && !(op.k === 'chunk' && (op.some || n === 0)))
          fail(`${op.k} of ${n} with ${left} left did not throw`)
      } catch (e) {
        if (!(e instanceof RangeError) || (e as RangeError & { code?: string }).code !== 'ERR_OUT_OF_RANGE') throw e
        if (fits) fail(`${op.k} of ${n} with ${left} left threw ${e.message}`)
        continue
      }
      if (got !== null && !got.equals(flat.subarray(p.pos, p.pos + moved))) fail(`read data differs at ${p.pos}`)
      if (want !== null) want.copy(model, p.pos)
      p.pos += moved
      p.used += moved
    }
    for (const q of parts) {
      if (q.s.availableBytes() !== q.end - q.pos || done(q) !== q.used)
        fail(`a part has ${q.s.availableBytes()} left / ${done(q)} done, model ${q.end - q.pos} / ${q.used}`)
    }
  }
  if (write) {
    // Guest memory holds exactly what the model wrote (zeros elsewhere), and nothing past.
    let at = 0
    for (const d of mine) {
      if (!memory.read(d.addr, d.len).equals(model.subarray(at, at + d.len))) fail(`guest buffer at ${at} differs`)
      if (memory.read(d.addr + d.len, 3).some((b) => b !== 0)) fail(`bytes after buffer at ${at} were written`)
      at += d.len
    }
  }
}

test('random splits, fields and partial copies on random chains agree with a flat model', (t) => {
  const seed = fuzzSeed()
  fc.assert(
    fc.property(caseArb, ({ lens, write, indirect, ops }) => run(lens, write, indirect, ops)),
    { numRuns: fuzzRuns(300), ...(seed === undefined ? {} : { seed }) },
  )
  t.pass('every case held (fc.assert throws the shrunk counterexample otherwise)')
})
