// The host's copy of the guest program's data pattern (scripts/guest/vqload.c): the
// 32-bit little-endian word at byte offset o is mix32((o / 4) * 0x9E3779B1 + seed).
// Data the guest wrote is checked against the disk FILE with these.
import * as fs from 'node:fs'
import * as zlib from 'node:zlib'

function mix32(x: number): number {
  x ^= x >>> 16
  x = Math.imul(x, 0x7feb352d)
  x ^= x >>> 15
  x = Math.imul(x, 0x846ca68b)
  x ^= x >>> 16
  return x >>> 0
}

/** The pattern's bytes for [offset, offset + length) (both multiples of 4). */
export function patternBytes(offset: number, length: number, seed: number): Buffer {
  const b = Buffer.alloc(length)
  for (let i = 0; i < length; i += 4) b.writeUInt32LE(mix32((Math.imul((offset + i) / 4, 0x9e3779b1) + seed) >>> 0), i)
  return b
}

/** Reads [offset, offset + length) of a file (zeros past its end). */
export function readRange(file: string, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length)
  const fd = fs.openSync(file, 'r')
  try {
    let done = 0
    while (done < length) {
      const n = fs.readSync(fd, b, done, length - done, offset + done)
      if (n === 0) break
      done += n
    }
  } finally {
    fs.closeSync(fd)
  }
  return b
}

/** The offset of the first word of FILE's [offset, offset + length) that is not the pattern, or -1. */
export function firstMismatch(file: string, offset: number, length: number, seed: number): number {
  const got = readRange(file, offset, length)
  const want = patternBytes(offset, length, seed)
  if (got.equals(want)) return -1
  for (let i = 0; i < length; i += 4) if (got.readUInt32LE(i) !== want.readUInt32LE(i)) return offset + i
  return -1
}

/** vqload's csum of FILE's [offset, offset + length): the sum of the CRC-32 of each bs-sized request. */
export function fileCsum(file: string, offset: number, length: number, bs: number): number {
  const got = readRange(file, offset, length)
  let sum = 0
  for (let i = 0; i < length; i += bs) sum += zlib.crc32(got.subarray(i, Math.min(i + bs, length)))
  return sum
}
