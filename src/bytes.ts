// The caller's byte arrays, as the engine knows them. A Reader or Writer decides how many
// bytes to copy, and where, from the real length of the caller's Uint8Array; a subclass
// with a `length` getter, an own `length` property, a patched TypedArray.prototype getter
// or a Proxy around a Uint8Array can each report anything. So the TypedArray accessors are
// captured when this module loads and called on the array directly: they read the
// engine's internal slots, and the brand check (the Symbol.toStringTag getter, which
// answers undefined for anything but a real typed array, a Proxy included) runs no user
// code. Each call costs a few nanoseconds more than reading `.length`.

type Getter = (self: unknown) => unknown

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object
// Function.prototype.call bound to the getter: calling it calls the getter with the array
// as `this`, through functions captured here (a later patch of call or bind changes nothing).
const uncurry = Function.prototype.bind.bind(Function.prototype.call) as (f: (this: unknown) => unknown) => Getter

function getter(key: PropertyKey): Getter {
  const get = Object.getOwnPropertyDescriptor(TypedArrayPrototype, key)?.get
  if (get === undefined) throw new Error(`virtio-queue: this JavaScript engine lacks TypedArray ${String(key)}`)
  return uncurry(get)
}

const tagOf = getter(Symbol.toStringTag)
const lengthOf = getter('length')
const bufferOf = getter('buffer')
const byteOffsetOf = getter('byteOffset')
const byteLengthOf = getter('byteLength')
const Uint8ArrayCtor = Uint8Array

/**
 * The real length of `value` when it is a Uint8Array (a Buffer, any subclass, from any
 * realm), -1 for anything else (a Proxy, a Uint8ClampedArray, an array-like object).
 */
export function uint8Length(value: unknown): number {
  return tagOf(value) === 'Uint8Array' ? (lengthOf(value) as number) : -1
}

/**
 * `n` bytes of `bytes` (a real Uint8Array of real length `len` >= `n`) to hand to GuestMemory:
 * `bytes` itself when that is all of it (no allocation: the hot path), else a fresh view of
 * its first `n` bytes. GuestMemory.readInto/write then take the length of the whole array
 * themselves, and must take it from the intrinsics as well. Checking the prototype here, to
 * keep subclasses away from GuestMemory, cost about as much as the rest of a readInto.
 */
export function uint8Whole(bytes: Uint8Array, len: number, n: number): Uint8Array {
  return n === len ? bytes : uint8View(bytes, 0, n)
}

/**
 * The real backing store, byte offset and byte length of `value` when it is a typed array
 * of any kind (from any realm), else null.
 */
export function typedArrayBacking(value: unknown): [ArrayBuffer | SharedArrayBuffer, number, number] | null {
  if (tagOf(value) === undefined) return null
  return [
    bufferOf(value) as ArrayBuffer | SharedArrayBuffer,
    byteOffsetOf(value) as number,
    byteLengthOf(value) as number,
  ]
}

/** The real backing store of `bytes` (a real Uint8Array). */
export function uint8Buffer(bytes: Uint8Array): ArrayBuffer {
  return bufferOf(bytes) as ArrayBuffer
}

/** The real byte offset of `bytes` (a real Uint8Array) in its backing store. */
export function uint8ByteOffset(bytes: Uint8Array): number {
  return byteOffsetOf(bytes) as number
}

/**
 * A plain Uint8Array over `length` bytes of `bytes` (a real Uint8Array) from `start`, made
 * from its real backing store and offset (no subarray(): that calls the species constructor,
 * which a subclass chooses).
 */
export function uint8View(bytes: Uint8Array, start: number, length: number): Uint8Array {
  return new Uint8ArrayCtor(uint8Buffer(bytes), uint8ByteOffset(bytes) + start, length)
}
