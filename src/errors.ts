// Errors thrown by the package. Guest and queue errors are VirtioQueueError,
// whose `code` names the virtio-queue (or vm-memory) error variant; argument
// errors are TypeError / RangeError with Node-style codes.

import { types } from 'node:util'

import type { VirtioQueueErrorCode } from '../index'

export type { VirtioQueueErrorCode }

const { isProxy } = types
const ordinaryHasInstance = Function.prototype[Symbol.hasInstance]

export class VirtioQueueError extends Error {
  readonly code: VirtioQueueErrorCode

  constructor(message: string, code: VirtioQueueErrorCode) {
    super(message)
    this.code = code
  }

  override get name(): string {
    return 'VirtioQueueError'
  }

  /**
   * `instanceof VirtioQueueError` holds for every error of this class and for the guest
   * address errors (`code: 'InvalidGuestAddress'`), which are RangeErrors as well: a class
   * can extend only one of Error and RangeError, so the address errors extend RangeError
   * and are recognised here by their private brand (not by a property anyone could set).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class on the right of instanceof (a subclass too)
    if (Reflect.apply(ordinaryHasInstance, this, [value])) return true
    // biome-ignore lint/complexity/noThisInStatic: only VirtioQueueError itself, not a subclass, covers the address errors
    return this === VirtioQueueError && GuestAddressError.is(value)
  }
}

/** A guest address range outside guest memory: a RangeError that is also a VirtioQueueError. */
class GuestAddressError extends RangeError {
  readonly #brand = true
  readonly code: 'InvalidGuestAddress' = 'InvalidGuestAddress'

  override get name(): string {
    return 'VirtioQueueError'
  }

  static is(value: unknown): boolean {
    return typeof value === 'object' && value !== null && #brand in value
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

/**
 * A guest address range that no region (or no single region) holds: a RangeError with
 * `code: 'InvalidGuestAddress'` that is also `instanceof VirtioQueueError`.
 */
export function addressError(addr: number | bigint, length: number, what = 'outside guest memory'): RangeError {
  return new GuestAddressError(`guest address 0x${addr.toString(16)} (${length} bytes) is ${what}`)
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'bigint') return `type bigint (${value}n)`
  if (typeof value === 'number') return `type number (${value})`
  if (typeof value === 'string') return `type string (${JSON.stringify(value.slice(0, 40))})`
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'object') {
    // Describing the value runs none of its code: no Proxy trap, no getter.
    if (isProxy(value)) return 'a Proxy'
    const proto = Object.getPrototypeOf(value) as object | null
    const ctor = proto === null ? undefined : Object.getOwnPropertyDescriptor(proto, 'constructor')?.value
    const name = typeof ctor === 'function' ? Object.getOwnPropertyDescriptor(ctor, 'name')?.value : undefined
    return typeof name === 'string' && name !== '' ? `an instance of ${name}` : 'an object'
  }
  return `type ${typeof value}`
}
