// Guest memory for the robustness tests: every region is a sub-view of a
// larger (Shared)ArrayBuffer whose surrounding bytes hold a canary pattern, so
// a write outside guest memory shows up as a changed canary. The raw accessors
// here read and write the host bytes directly, independently of the package's
// GuestMemory, so they can serve as the reference.
import { GuestMemory } from '../..'

/** A region to map: guest address (8-aligned, below 2^53) and size in bytes. */
export interface RegionSpec {
  guestAddress: number
  size: number
}

/** A guest range [start, start + len), as bigints (descriptors can point anywhere in 64 bits). */
export interface Range {
  start: bigint
  len: bigint
}

interface Mapped {
  gpa: bigint
  size: number
  end: bigint
  /** Offset of the region in `bytes`. */
  pre: number
  /** The whole backing buffer, canaries included. */
  bytes: Uint8Array
  /** The region's bytes. */
  view: Uint8Array
}

/** Canary bytes before and after each region (a multiple of 8, so regions stay 8-aligned in the host). */
export const CANARY_BYTES = 64

function canary(k: number): number {
  return (k * 131 + 0x5a) & 0xff
}

export class CanaryMemory {
  readonly mem: GuestMemory
  readonly regions: readonly Mapped[]
  readonly sorted: readonly Mapped[]

  constructor(specs: readonly RegionSpec[], options: { shared?: boolean } = {}) {
    const regions: Mapped[] = specs.map((s) => {
      const total = CANARY_BYTES + s.size + CANARY_BYTES
      const ab = options.shared ? new SharedArrayBuffer(total) : new ArrayBuffer(total)
      const bytes = new Uint8Array(ab)
      for (let k = 0; k < total; k++) bytes[k] = canary(k)
      const view = bytes.subarray(CANARY_BYTES, CANARY_BYTES + s.size)
      view.fill(0)
      const gpa = BigInt(s.guestAddress)
      return { gpa, size: s.size, end: gpa + BigInt(s.size), pre: CANARY_BYTES, bytes, view }
    })
    this.regions = regions
    this.sorted = [...regions].sort((a, b) => (a.gpa < b.gpa ? -1 : 1))
    this.mem = GuestMemory.fromBuffers(
      specs.map((s, i) => ({ guestAddress: s.guestAddress, buffer: regions[i]!.view })),
    )
  }

  /** The region holding guest address `a`, if any. */
  find(a: bigint): Mapped | undefined {
    for (const r of this.sorted) if (a >= r.gpa && a < r.end) return r
    return undefined
  }

  /** Whether every byte of [a, a + len) is guest memory (possibly across adjacent regions). */
  mapped(a: bigint, len: number | bigint): boolean {
    const end = a + BigInt(len)
    let cur = a
    while (cur < end) {
      const r = this.find(cur)
      if (!r) return false
      cur = r.end
    }
    return len !== 0 || this.find(a) !== undefined
  }

  /** Whether [a, a + len) lies in one region (what an atomic access needs). */
  inOneRegion(a: bigint, len: number): boolean {
    const r = this.find(a)
    return r !== undefined && a + BigInt(len) <= r.end
  }

  /** The bytes of [a, a + len), or null unless all of it is guest memory. */
  read(a: bigint, len: number): Uint8Array | null {
    if (!this.mapped(a, len)) return null
    const out = new Uint8Array(len)
    let done = 0
    while (done < len) {
      const cur = a + BigInt(done)
      const r = this.find(cur)!
      const o = Number(cur - r.gpa)
      const n = Math.min(len - done, r.size - o)
      out.set(r.view.subarray(o, o + n), done)
      done += n
    }
    return out
  }

  /** Writes the mapped bytes of `data` at `a`; bytes that fall outside guest memory are dropped. */
  write(a: bigint, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const cur = a + BigInt(i)
      const r = this.find(cur)
      if (r) r.view[Number(cur - r.gpa)] = data[i]!
    }
  }

  readU16(a: bigint): number | null {
    const b = this.read(a, 2)
    return b && b[0]! | (b[1]! << 8)
  }

  readU32(a: bigint): number | null {
    const b = this.read(a, 4)
    return b && (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0
  }

  writeU16(a: bigint, v: number): void {
    this.write(a, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff))
  }

  /** A copy of every region's bytes. */
  snapshot(): Uint8Array[] {
    return this.regions.map((r) => r.view.slice())
  }

  /** A description of the first changed canary byte, or null when all are intact. */
  checkCanaries(): string | null {
    for (const [i, r] of this.regions.entries()) {
      const total = r.bytes.length
      for (let k = 0; k < total; k++) {
        if (k === r.pre) k += r.size
        if (k >= total) break
        if (r.bytes[k] !== canary(k)) {
          const where = k < r.pre ? `${r.pre - k} bytes before` : `${k - r.pre - r.size} bytes after`
          return `canary ${where} region ${i} (guest 0x${r.gpa.toString(16)}, ${r.size} bytes) changed`
        }
      }
    }
    return null
  }

  /**
   * A description of the first guest byte that differs from `before` and is in none of
   * the `allowed` ranges, or null.
   */
  changedOutside(before: readonly Uint8Array[], allowed: readonly Range[]): string | null {
    const limit = 2n ** 53n
    const clip = (v: bigint) => Number(v < limit ? v : limit)
    const spans = allowed.map((x) => [clip(x.start), clip(x.start + x.len)] as const)
    for (const [i, r] of this.regions.entries()) {
      const old = before[i]!
      if (Buffer.from(r.view.buffer, r.view.byteOffset, r.size).equals(old)) continue
      const base = Number(r.gpa)
      for (let k = 0; k < r.size; k++) {
        if (r.view[k] === old[k]) continue
        const a = base + k
        if (!spans.some(([s, e]) => a >= s && a < e)) {
          return `guest byte 0x${a.toString(16)} changed (0x${old[k]!.toString(16)} -> 0x${r.view[k]!.toString(16)}) outside the used ring and device-writable buffers`
        }
      }
    }
    return null
  }
}

/** A small deterministic generator (mulberry32) for bulk bytes. */
export function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

/** Fills `view` with bytes from `seed` (0: leave zeros). */
export function fillFrom(view: Uint8Array, seed: number): void {
  if (seed === 0) return
  const next = prng(seed)
  for (let i = 0; i < view.length; i += 4) {
    const v = next()
    for (let j = 0; j < 4 && i + j < view.length; j++) view[i + j] = (v >>> (8 * j)) & 0xff
  }
}
