// Chain reads and writes for fuzz-ops: Reader/Writer in random chunks and the
// zero-copy views, checked against guest memory read through CanaryMemory.
import type { DescriptorChain } from '../..'
import type { OpSpec } from './fuzz-ops-arb'
import type { Rig } from './fuzz-ops'
import { attempt, bufferBytes, sameOutcome, WRITE, type Outcome, type RefDesc } from './fuzz-ref'

/** Event counts over all fuzz-ops cases run in this process (for campaign reports). */
export const opsStats: Record<string, number> = {}
export const count = (k: string, n = 1) => {
  opsStats[k] = (opsStats[k] ?? 0) + n
}

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value })
const fail = (code: string): Outcome<never> => ({ ok: false, code })

export function io(r: Rig, op: Extract<OpSpec, { k: 'io' }>): void {
  if (r.held.length === 0) return
  const { chain, ref } = r.held[op.pick % r.held.length]!
  const descs = ref.descs.filter((d) => ((d.flags & WRITE) !== 0) === op.write)
  const total = descs.reduce((n, d) => n + d.len, 0)
  const ctx = `io ${op.write ? 'write' : 'read'} chain ${ref.head}`
  const stream = op.write ? chain.writer() : chain.reader()
  const bytes = op.write ? null : bufferBytes(r.m, descs, total)
  const written: Uint8Array[] = []
  let pos = 0
  for (const n of op.chunks) {
    const data = new Uint8Array(n).map((_, i) => (i + pos + n) & 0xff)
    if (!op.write && op.into) {
      const k = (stream as ReturnType<DescriptorChain['reader']>).readInto(data)
      if (k !== Math.min(n, total - pos) || !Buffer.from(data.subarray(0, k)).equals(bytes!.subarray(pos, pos + k)))
        throw new Error(`${ctx}: readInto`)
      pos += k
      continue
    }
    const got = attempt(ctx, () => ('write' in stream ? stream.write(data) : stream.read(n)))
    count(`${op.write ? 'write' : 'read'} ${got.ok ? 'ok' : got.code}`)
    sameOutcome(ctx, got, n > total - pos ? fail('ERR_OUT_OF_RANGE') : ok(0))
    if (!got.ok) continue
    if (op.write) written.push(data)
    else if (!Buffer.from(got.value as Buffer).equals(bytes!.subarray(pos, pos + n)))
      throw new Error(`${ctx}: data differs at ${pos}`)
    pos += n
  }
  const done = 'write' in stream ? stream.bytesWritten() : stream.bytesRead()
  if (done !== pos || stream.availableBytes() !== total - pos)
    throw new Error(`${ctx}: position ${done}/${stream.availableBytes()}, expected ${pos}/${total - pos}`)
  if (op.write && !Buffer.from(bufferBytes(r.m, descs, pos)).equals(Buffer.concat(written)))
    throw new Error(`${ctx}: guest memory differs from what was written`)
}

export function views(r: Rig, pick: number): void {
  if (r.held.length === 0) return
  const { chain, ref } = r.held[pick % r.held.length]!
  const check = (name: string, got: Buffer[], ds: RefDesc[]) => {
    if (!Buffer.concat(got).equals(bufferBytes(r.m, ds, Infinity)))
      throw new Error(`${name}() of chain ${ref.head} differs from guest memory`)
  }
  check('buffers', chain.buffers(), ref.descs)
  check(
    'readableBuffers',
    chain.readableBuffers(),
    ref.descs.filter((d) => !(d.flags & WRITE)),
  )
  check(
    'writableBuffers',
    chain.writableBuffers(),
    ref.descs.filter((d) => d.flags & WRITE),
  )
}
