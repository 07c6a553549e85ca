// Errors thrown by the package. Guest and queue errors are VirtioQueueError,
// whose `code` names the virtio-queue (or vm-memory) error variant; argument
// errors are TypeError / RangeError with Node-style codes.

import type { VirtioQueueErrorCode } from '../index'

export type { VirtioQueueErrorCode }

export class VirtioQueueError extends Error {
  readonly code: VirtioQueueErrorCode

  constructor(message: string, code: VirtioQueueErrorCode) {
    super(message)
    this.code = code
  }

  override get name(): string {
    return 'VirtioQueueError'
  }
}

export function typeError(name: string, expected: string, value: unknown): TypeError {
  const e = new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`)
  ;(e as TypeError & { code: string }).code = 'ERR_INVALID_ARG_TYPE'
  return e
}

export function rangeError(name: string, reason: string): RangeError {
  const e = new RangeError(`The "${name}" argument is out of range: ${reason}`)
  ;(e as RangeError & { code: string }).code = 'ERR_OUT_OF_RANGE'
  return e
}

/** A guest address range that no region (or no single region) holds. */
export function addressError(addr: number | bigint, length: number, what = 'outside guest memory'): RangeError {
  const e = new RangeError(`guest address 0x${addr.toString(16)} (${length} bytes) is ${what}`)
  ;(e as RangeError & { code: string }).code = 'InvalidGuestAddress'
  return e
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'bigint') return `type bigint (${value}n)`
  if (typeof value === 'number') return `type number (${value})`
  if (typeof value === 'string') return `type string (${JSON.stringify(value.slice(0, 40))})`
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'object') {
    const ctor = (value as object).constructor
    return ctor?.name ? `an instance of ${ctor.name}` : 'an object'
  }
  return `type ${typeof value}`
}
