// Readers and writers over a chain's buffers, like the crate's Reader/Writer,
// but a buffer may span two adjacent guest memory regions.
import { toCount } from './address'
import { typeError, VirtioQueueError } from './errors'
import { Segments } from './memory'

class Cursor {
  protected readonly seg: Segments
  protected index = 0
  protected offset = 0
  protected consumed = 0

  constructor(seg: Segments) {
    this.seg = seg
  }

  /** Bytes left. */
  availableBytes(): number {
    return this.seg.total - this.consumed
  }

  /** Copies between the stream and `bytes`: `toGuest` writes into guest memory. */
  protected transfer(bytes: Uint8Array, toGuest: boolean): void {
    const { buffers, offsets, lengths } = this.seg
    // A region whose ArrayBuffer was detached (transferred) has length 0: check every piece
    // this copy touches first, so nothing is read from or written to a stale view.
    for (let i = this.index, left = bytes.length + this.offset; left > 0; i++) {
      if (buffers[i]!.length < offsets[i]! + lengths[i]!) {
        throw new VirtioQueueError('the ArrayBuffer backing guest memory was detached (transferred); the memory is no longer usable', 'DetachedBuffer')
      }
      left -= lengths[i]!
    }
    let done = 0
    while (done < bytes.length) {
      const b = buffers[this.index]!
      const start = offsets[this.index]! + this.offset
      const n = Math.min(bytes.length - done, lengths[this.index]! - this.offset)
      if (toGuest) b.set(n === bytes.length ? bytes : bytes.subarray(done, done + n), start)
      else bytes.set(b.subarray(start, start + n), done)
      done += n
      this.offset += n
      if (this.offset === lengths[this.index]) {
        this.index++
        this.offset = 0
      }
    }
    this.consumed += done
  }
}

/** Reads a chain's device-readable buffers in order. */
export class Reader extends Cursor {
  /** Bytes read so far. */
  bytesRead(): number {
    return this.consumed
  }

  /** Reads exactly `length` bytes; throws RangeError (reading nothing) if fewer are left. */
  read(length: number): Buffer {
    const n = toCount(length, 'length')
    if (n > this.availableBytes()) throw pastEnd('read', n, this.availableBytes())
    const out = Buffer.allocUnsafe(n)
    this.transfer(out, false)
    return out
  }

  /** Reads up to `target.length` bytes into `target`; returns how many. */
  readInto(target: Uint8Array): number {
    if (!(target instanceof Uint8Array)) throw typeError('target', 'a Uint8Array', target)
    const n = Math.min(target.length, this.availableBytes())
    this.transfer(n === target.length ? target : target.subarray(0, n), false)
    return n
  }
}

/** Writes a chain's device-writable buffers in order. */
export class Writer extends Cursor {
  /** Bytes written so far. */
  bytesWritten(): number {
    return this.consumed
  }

  /** Writes all of `bytes` and returns its length; throws RangeError (writing nothing) if they do not fit. */
  write(bytes: Uint8Array): number {
    if (!(bytes instanceof Uint8Array)) throw typeError('bytes', 'a Uint8Array', bytes)
    if (bytes.length > this.availableBytes()) throw pastEnd('write', bytes.length, this.availableBytes())
    this.transfer(bytes, true)
    return bytes.length
  }
}

function pastEnd(op: string, n: number, left: number): RangeError {
  const e = new RangeError(`cannot ${op} ${n} bytes: only ${left} ${op === 'read' ? 'readable' : 'writable'} bytes are left in the chain`)
  ;(e as RangeError & { code: string }).code = 'ERR_OUT_OF_RANGE'
  return e
}
