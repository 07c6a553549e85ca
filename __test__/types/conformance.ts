// Type test: the public typings tsc emits from src/ (lib/index.d.ts, with the
// `@internal` members stripped) describe what src/index.ts really exports, and
// strip exactly the internals named here. tsc fails here when they diverge;
// `npm test` builds lib/ before it runs this.
import type * as api from '../../lib/index'
import type * as impl from '../../src/index'

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false
type Assert<T extends true> = T
/** The public members of a src/ class that the typings do not declare, minus the named internals. */
type Undeclared<Impl, Decl, Internal extends PropertyKey = never> = Exclude<keyof Impl, keyof Decl | Internal>
/** Internals are public in src/ (other modules use them) and absent from the typings. */
type Stripped<Impl, Decl, Internal extends keyof Impl> = Equal<Extract<keyof Decl, Internal>, never>
/** Classes whose instances only the package makes: users cannot `new` them. */
type NotConstructible<C> = C extends abstract new (...args: never[]) => unknown ? false : true

// The typings declare every runtime export and nothing else. (Classes cannot be compared
// as wholes: src/ and lib/ declare each class once, and classes with private members are
// compared by declaration; their members are compared below.)
export type ValueKeys = Assert<Equal<keyof typeof impl, keyof typeof api>>
// No public member left undeclared: a new method must be typed and documented, and the
// `@internal` members each class keeps for the others are listed here by name.
type MemoryInternals = 'handle' | 'covers' | 'resolve' | 'view' | 'checkAttached'
export type M1 = Assert<Equal<Undeclared<impl.GuestMemory, api.GuestMemory, MemoryInternals>, never>>
export type M2 = Assert<Equal<Undeclared<impl.Queue, api.Queue, 'handle'>, never>>
export type M3 = Assert<Equal<Undeclared<impl.QueueGuard, api.QueueGuard>, never>>
export type M4 = Assert<Equal<Undeclared<impl.AvailIter, api.AvailIter>, never>>
export type M5 = Assert<Equal<Undeclared<impl.DescriptorChain, api.DescriptorChain>, never>>
export type M6 = Assert<Equal<Undeclared<impl.Descriptor, api.Descriptor>, never>>
type CursorInternals = 'mem' | 'words' | 'end' | 'dir' | 'total' | 'at' | 'offset' | 'consumed'
export type M7 = Assert<Equal<Undeclared<impl.Reader, api.Reader, CursorInternals>, never>>
export type M8 = Assert<Equal<Undeclared<impl.Writer, api.Writer, CursorInternals>, never>>
export type M9 = Assert<Equal<Undeclared<impl.ChainBatch, api.ChainBatch, 'grow'>, never>>
export type M10 = Assert<Equal<Undeclared<impl.UsedBatch, api.UsedBatch>, never>>
export type M11 = Assert<Equal<Undeclared<impl.VirtioQueueError, api.VirtioQueueError>, never>>
export type M12 = Assert<Equal<Undeclared<impl.SystemError, api.SystemError>, never>>
export type M13 = Assert<Equal<Undeclared<impl.FileIoBatch, api.FileIoBatch>, never>>
// Static members of the classes with public statics.
export type S1 = Assert<
  Equal<
    Undeclared<typeof impl.ChainBatch, typeof api.ChainBatch, 'prototype' | 'wordsOf' | 'popFrom' | 'fileSpan'>,
    never
  >
>
// `fromNative` is the vhost-user backend's (memory a frontend shared): stripped.
export type S2 = Assert<
  Equal<Undeclared<typeof impl.GuestMemory, typeof api.GuestMemory, 'prototype' | 'handleOf' | 'fromNative'>, never>
>
export type S2i = Assert<Stripped<typeof impl.GuestMemory, typeof api.GuestMemory, 'fromNative'>>
export type S4 = Assert<
  Equal<Undeclared<typeof impl.UsedBatch, typeof api.UsedBatch, 'prototype' | 'take' | 'is'>, never>
>
export type S3 = Assert<Equal<Undeclared<typeof impl.Queue, typeof api.Queue, 'prototype'>, never>>
// The internals really are stripped from the typings.
export type I1 = Assert<Stripped<impl.GuestMemory, api.GuestMemory, MemoryInternals>>
export type I2 = Assert<Stripped<impl.Queue, api.Queue, 'handle'>>
export type I3 = Assert<Stripped<typeof impl.GuestMemory, typeof api.GuestMemory, 'handleOf'>>
export type I4 = Assert<Stripped<impl.Reader, api.Reader, CursorInternals>>
export type I5 = Assert<Stripped<impl.Writer, api.Writer, CursorInternals>>
export type I6 = Assert<Stripped<impl.ChainBatch, api.ChainBatch, 'grow'>>
export type I7 = Assert<Stripped<typeof impl.UsedBatch, typeof api.UsedBatch, 'take' | 'is'>>
export type I8 = Assert<Stripped<typeof impl.ChainBatch, typeof api.ChainBatch, 'wordsOf' | 'popFrom' | 'fileSpan'>>
// Objects the package hands out cannot be constructed by users.
export type C1 = Assert<NotConstructible<typeof api.GuestMemory>>
export type C2 = Assert<NotConstructible<typeof api.QueueGuard>>
export type C3 = Assert<NotConstructible<typeof api.AvailIter>>
export type C4 = Assert<NotConstructible<typeof api.DescriptorChain>>
export type C5 = Assert<NotConstructible<typeof api.Descriptor>>
export type C6 = Assert<NotConstructible<typeof api.Reader>>
export type C7 = Assert<NotConstructible<typeof api.Writer>>
// ... and the others can.
export type C8 = Assert<Equal<NotConstructible<typeof api.Queue>, false>>
export type C9 = Assert<Equal<NotConstructible<typeof api.ChainBatch>, false>>
