// A Buffer-backed BlockBackend for the virtio-blk example's tests, with fault injection.
import type { BlockBackend } from '../../examples/virtio-blk/disk'
import { fillPattern } from '../../examples/virtio-blk/random'

/** A disk in a Buffer; `failNext` makes the next read or write throw, `corrupt` flips a byte of every read. */
export class MemDisk implements BlockBackend {
  readonly bytes: Buffer
  readonly sectors: number
  flushes = 0
  failNext = false
  corrupt = false
  constructor(sectors: number) {
    this.sectors = sectors
    this.bytes = Buffer.alloc(sectors * 512)
  }
  read(views: readonly Buffer[], offset: number): void {
    this.#maybeFail()
    for (const v of views) {
      this.bytes.copy(v, 0, offset, offset + v.length)
      if (this.corrupt && v.length > 0) v[0]! ^= 1
      offset += v.length
    }
  }
  write(views: readonly Buffer[], offset: number): void {
    this.#maybeFail()
    for (const v of views) offset += v.copy(this.bytes, offset)
  }
  flush(): void {
    this.flushes++
  }
  #maybeFail(): void {
    if (this.failNext) {
      this.failNext = false
      throw new Error('EIO')
    }
  }
}

/** `len` bytes of the example's deterministic pattern. */
export function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len)
  fillPattern(b, seed)
  return b
}

/** A MemDisk that can discard (recording the holes it "punched") and write zeros. */
export class DiscardingMemDisk extends MemDisk {
  readonly holes: [number, number][] = []
  readonly zeroed: [number, number][] = []
  canUnmap = true
  discard(offset: number, length: number): void {
    this.holes.push([offset, length])
    this.bytes.fill(0, offset, offset + length)
  }
  writeZeroes(offset: number, length: number): void {
    this.zeroed.push([offset, length])
    this.bytes.fill(0, offset, offset + length)
  }
}
