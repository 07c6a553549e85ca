// Deterministic randomness for the demo: one seed decides every request, so a
// failing run can be replayed exactly with --seed.

/** A small seeded PRNG (sfc32): fast, 32-bit, good enough for workloads. */
export class Rng {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor(seed: number) {
    this.#a = 0x9e3779b9
    this.#b = 0x243f6a88
    this.#c = 0xb7e15162
    this.#d = seed >>> 0
    for (let i = 0; i < 12; i++) this.u32() // mix the seed in
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0
    this.#d = (this.#d + 1) | 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) | 0
    this.#c = (this.#c << 21) | (this.#c >>> 11)
    this.#c = (this.#c + t) | 0
    return t >>> 0
  }

  /** An integer in [min, max] (inclusive; the span must be below 2^32). */
  int(min: number, max: number): number {
    return min + Math.floor((this.u32() / 4294967296) * (max - min + 1))
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.u32() < p * 4294967296
  }

  /** One of `weights`' keys, picked with probability proportional to its weight. */
  pick<K extends string>(weights: Readonly<Record<K, number>>): K {
    let total = 0
    for (const k in weights) total += weights[k]
    let r = (this.u32() / 4294967296) * total
    let last: K | undefined
    for (const k in weights) {
      if (weights[k] <= 0) continue
      last = k
      if (r < weights[k]) return k
      r -= weights[k]
    }
    return last!
  }
}

/**
 * Fills `buf` with a pseudo-random pattern derived from `seed` (xorshift32, four bytes
 * per step). Data written by different requests differs everywhere, so a misplaced,
 * stale or torn sector shows up when it is read back.
 */
export function fillPattern(buf: Buffer, seed: number): void {
  let x = seed | 0 || 0x6d2b79f5
  const words = buf.length >>> 2
  if ((buf.byteOffset & 3) === 0 && words > 0) {
    const u32 = new Uint32Array(buf.buffer, buf.byteOffset, words)
    for (let i = 0; i < words; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      u32[i] = x
    }
  } else {
    for (let i = 0; i < words * 4; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      buf[i] = x & 0xff
    }
  }
  for (let i = words * 4; i < buf.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    buf[i] = x & 0xff
  }
}
