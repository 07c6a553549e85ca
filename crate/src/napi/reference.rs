//! Strong references: how native code keeps a JavaScript value alive beyond
//! the call that gave it.

use std::ptr::null_mut;

use super::env::{check, Env, Value};
use super::error::Result;
use super::sys::*;

/// A strong reference to a JavaScript value, deleted on drop.
pub struct Ref {
    env: Env,
    raw: napi_ref,
}

impl Ref {
    pub fn new(env: Env, value: Value) -> Result<Self> {
        let mut raw = null_mut();
        // SAFETY: `value` is a value of `env`.
        check(unsafe { napi_create_reference(env.raw(), value.0, 1, &mut raw) })?;
        Ok(Ref { env, raw })
    }

    /// The value, for use in the current call of the reference's environment.
    pub fn value(&self) -> Result<Value> {
        let mut v = null_mut();
        // SAFETY: the reference is alive until dropped.
        check(unsafe { napi_get_reference_value(self.env.raw(), self.raw, &mut v) })?;
        Ok(Value(v))
    }

    /// The environment the reference belongs to.
    pub fn env(&self) -> Env {
        self.env
    }
}

impl Drop for Ref {
    fn drop(&mut self) {
        // SAFETY: the reference was created on `env` and is deleted once. References
        // are only dropped on the thread of their environment (finalizers included).
        unsafe { napi_delete_reference(self.env.raw(), self.raw) };
    }
}

/// A weak reference: does not keep the value alive; `value` is `None` once
/// it was collected. Deleted on drop (on the environment's thread).
pub struct WeakRef {
    env: Env,
    raw: napi_ref,
}

impl WeakRef {
    pub fn new(env: Env, value: Value) -> Result<Self> {
        let mut raw = null_mut();
        // SAFETY: `value` is an object of `env`; refcount 0 makes the reference weak.
        check(unsafe { napi_create_reference(env.raw(), value.0, 0, &mut raw) })?;
        Ok(WeakRef { env, raw })
    }

    pub fn value(&self) -> Result<Option<Value>> {
        let mut v = null_mut();
        // SAFETY: the reference is alive until dropped.
        check(unsafe { napi_get_reference_value(self.env.raw(), self.raw, &mut v) })?;
        Ok((!v.is_null()).then_some(Value(v)))
    }
}

impl Drop for WeakRef {
    fn drop(&mut self) {
        // SAFETY: as for `Ref`.
        unsafe { napi_delete_reference(self.env.raw(), self.raw) };
    }
}
