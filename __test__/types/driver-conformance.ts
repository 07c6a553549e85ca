// Compile-time check that the typings tsc emits from src/driver
// (lib/driver/index.d.ts, which virtio-queue/driver resolves to) match
// src/driver. `tsc -p __test__/tsconfig.json --noEmit` fails when they diverge.
import type * as decl from '../../lib/driver/index'
import type * as stub from '../../driver'
import type { GuestMemory } from '../../src/index'
import type * as impl from '../../src/driver/index'

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false
type Assert<T extends true> = T
type NoExtra<K> = [K] extends [never] ? true : false

// No undeclared runtime exports, and no declared ones missing.
export type ValueKeys = Assert<Equal<keyof typeof impl, keyof typeof decl>>
// No undocumented public members.
export type DriverMembers = Assert<NoExtra<Exclude<keyof impl.SplitQueueDriver, keyof decl.SplitQueueDriver>>>
export type DriverMembersBack = Assert<NoExtra<Exclude<keyof decl.SplitQueueDriver, keyof impl.SplitQueueDriver>>>
export type AllocatorMembers = Assert<Equal<keyof impl.GuestAllocator, keyof decl.GuestAllocator>>
export type ErrorMembers = Assert<Equal<keyof impl.DriverError, keyof decl.DriverError>>

// Functions and constants are identical (classes, which cannot be compared as wholes since
// src/ and lib/ declare each once and private members make them nominal, member by member).
export type F1 = Assert<Equal<typeof impl.splitQueueLayout, typeof decl.splitQueueLayout>>
export type F2 = Assert<Equal<typeof impl.setUpDeviceQueue, typeof decl.setUpDeviceQueue>>
export type F3 = Assert<Equal<typeof impl.vringNeedEvent, typeof decl.vringNeedEvent>>
export type F4 = Assert<Equal<typeof impl.DriverConstants, typeof decl.DriverConstants>>
export type F5 = Assert<Equal<typeof impl.alignUp, typeof decl.alignUp>>

// Type-only exports are identical.
export type T1 = Assert<Equal<impl.DriverMemory, decl.DriverMemory>>
export type T2 = Assert<Equal<impl.DriverBuffer, decl.DriverBuffer>>
export type T3 = Assert<Equal<impl.AddChainOptions<string>, decl.AddChainOptions<string>>>
export type T4 = Assert<Equal<impl.UsedElement<number>, decl.UsedElement<number>>>
export type T5 = Assert<Equal<impl.SplitQueueDriverOptions, decl.SplitQueueDriverOptions>>
export type T6 = Assert<Equal<impl.SplitQueueLayout, decl.SplitQueueLayout>>
export type T7 = Assert<Equal<impl.SplitQueueLayoutOptions, decl.SplitQueueLayoutOptions>>
export type T8 = Assert<Equal<impl.RawDescriptor, decl.RawDescriptor>>
export type T9 = Assert<Equal<impl.RawUsedElem, decl.RawUsedElem>>
export type T10 = Assert<Equal<impl.DriverErrorCode, decl.DriverErrorCode>>
export type T11 = Assert<Equal<impl.IndirectTableAllocator, decl.IndirectTableAllocator>>
export type T12 = Assert<Equal<impl.IndirectTablePlacement, decl.IndirectTablePlacement>>

// Method signatures match in both directions (generic instance).
type Methods<C> = { [K in keyof C]: C[K] }
export type DriverShape = Assert<Equal<Methods<impl.SplitQueueDriver<string>>, Methods<decl.SplitQueueDriver<string>>>>
export type AllocatorShape = Assert<Equal<Methods<impl.GuestAllocator>, Methods<decl.GuestAllocator>>>

// The package's real GuestMemory satisfies the driver's structural memory interface.
export type GuestMemoryFits = Assert<GuestMemory extends decl.DriverMemory ? true : false>

// The root driver.d.ts (for resolvers without package.json "exports") is the same API.
export type StubKeys = Assert<Equal<keyof typeof stub, keyof typeof decl>>
export type StubDriver = Assert<Equal<stub.SplitQueueDriver<string>, decl.SplitQueueDriver<string>>>
