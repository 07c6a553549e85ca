// Compile-time check that the typings tsc emits from src/vhost-user
// (lib/vhost-user/index.d.ts, which virtio-queue/vhost-user resolves to) match
// src/vhost-user, strip exactly the `@internal` members, and keep Vring
// unconstructible. `tsc -p __test__/tsconfig.json --noEmit` fails when they diverge.
import type * as decl from '../../lib/vhost-user/index'
import type * as stub from '../../vhost-user'
import type * as impl from '../../src/vhost-user/index'

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false
type Assert<T extends true> = T
type NotConstructible<C> = C extends abstract new (...args: never[]) => unknown ? false : true

export type ValueKeys = Assert<Equal<keyof typeof impl, keyof typeof decl>>
export type StubKeys = Assert<Equal<keyof typeof stub, keyof typeof decl>>
export type BackendMembers = Assert<Equal<keyof impl.VhostUserBackend, keyof decl.VhostUserBackend>>
// `rebind` is the backend's (a new memory table): stripped from the typings.
export type VringMembers = Assert<Equal<Exclude<keyof impl.Vring, 'rebind'>, keyof decl.Vring>>
export type VringStatics = Assert<Equal<Exclude<keyof typeof impl.Vring, 'create'>, keyof typeof decl.Vring>>
export type VringPrivate = Assert<NotConstructible<typeof decl.Vring>>
// Interfaces that mention Vring (a class with private fields, nominal) compare by keys.
export type Device = Assert<Equal<keyof impl.VhostUserDevice, keyof decl.VhostUserDevice>>
export type Options = Assert<Equal<keyof impl.VhostUserBackendOptions, keyof decl.VhostUserBackendOptions>>
export type C1 = Assert<Equal<typeof impl.VIRTIO_F_VERSION_1, typeof decl.VIRTIO_F_VERSION_1>>
