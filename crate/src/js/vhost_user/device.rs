//! `JsDevice`: the core's `Device`, implemented by calling the JavaScript
//! device through the backend's dispatcher, on the main thread (the core calls
//! it from jobs the `Mailbox` runs there). A callback that throws becomes an
//! error for the core (the request is refused) or, where the core expects no
//! answer, a logged line: never an exception left pending, never an abort.

use std::rc::Rc;
use std::sync::Arc;

use super::host::{Event, Host};
use super::kick::{self, KickWatch};
use super::views::{self, Views};
use crate::engine::memory::GuestMem;
use crate::js::state::memory::{Memory, MemoryHandle};
use crate::napi::{Tagged, TypeTag, Value};
use crate::vhost_user::device::{Device, StopReason, Stopped, VringStart};
use crate::vhost_user::{Error as CoreError, Notifier};

/// A vring's call eventfd slot, handed to JavaScript (`vring.notify()`).
pub struct NotifierHandle(pub Arc<Notifier>);

impl Tagged for NotifierHandle {
    const TAG: TypeTag = TypeTag {
        lower: 0x7669_7274_696f_2d71,
        upper: 0x7668_6f73_7400_0004,
    };
    const EXPECTED: &'static str = "a vring notifier";
}

/// The fixed parameters of a device, read once from JavaScript.
#[derive(Clone, Copy)]
pub struct Params {
    pub features: u64,
    pub num_queues: u16,
    pub max_queue_size: u16,
    /// The largest view JavaScript can hold (`buffer.constants.MAX_LENGTH`, page-aligned).
    pub max_view: u64,
}

struct Running {
    _kick: KickWatch,
    /// Where the ring started: the answer when the device cannot say where it stopped.
    start_avail: u16,
}

pub struct JsDevice {
    host: Rc<Host>,
    params: Params,
    rings: Vec<Option<Running>>,
    views: Views,
}

impl JsDevice {
    pub fn new(host: Rc<Host>, params: Params) -> Self {
        JsDevice {
            host,
            rings: (0..params.num_queues).map(|_| None).collect(),
            params,
            views: Views::default(),
        }
    }

    /// Calls the device; the caller is on the main thread inside a handle scope.
    fn call(
        &self,
        event: Event,
        args: impl FnOnce(&Host) -> crate::napi::Result<Vec<Value>>,
    ) -> Result<Value, String> {
        let args = args(&self.host).map_err(|e| e.to_string())?;
        self.host.call(event, &args)
    }

    fn notify(&self, event: Event, args: impl FnOnce(&Host) -> crate::napi::Result<Vec<Value>>) {
        if let Err(msg) = self.call(event, args) {
            crate::js::vhost_user::log(&format!("the device's {event:?} handler failed: {msg}"));
        }
    }

    fn error_args(h: &Host, e: Option<&CoreError>) -> crate::napi::Result<Vec<Value>> {
        Ok(match e {
            Some(e) => vec![h.env.string(&e.to_string())?, h.env.string(e.code())?],
            None => vec![],
        })
    }

    fn memory_value(&mut self, mem: Option<&Arc<GuestMem>>) -> crate::engine::Result<Vec<Value>> {
        let env = self.host.env;
        let Some(mem) = mem else {
            return Ok(vec![env.undefined()?]);
        };
        let (regions, views) = views::make(env, mem, self.params.max_view)?;
        let previous = std::mem::replace(&mut self.views, views);
        previous.retire(env, Some(mem));
        let handle = env.new_external(MemoryHandle(Rc::new(Memory {
            mem: Arc::clone(mem),
            js: Vec::new(),
        })))?;
        Ok(vec![handle, regions])
    }
}

impl Device for JsDevice {
    fn features(&self) -> u64 {
        self.params.features
    }

    fn num_queues(&self) -> u16 {
        self.params.num_queues
    }

    fn max_queue_size(&self) -> u16 {
        self.params.max_queue_size
    }

    fn config(&self) -> Vec<u8> {
        let env = self.host.env;
        match self.call(Event::Config, |_| Ok(vec![])) {
            Ok(v) => match env.typed_array(v, "config", crate::napi::TypedArrayKind::Uint8) {
                // SAFETY: V8's view of a live Uint8Array, copied before JavaScript runs again.
                Ok(ta) if !ta.data.is_null() => {
                    unsafe { std::slice::from_raw_parts(ta.data, ta.byte_len) }.to_vec()
                }
                Ok(_) => Vec::new(),
                Err(_) => {
                    crate::js::vhost_user::log("the device's config() did not return a Uint8Array");
                    Vec::new()
                }
            },
            Err(msg) => {
                crate::js::vhost_user::log(&format!("the device's config() failed: {msg}"));
                Vec::new()
            }
        }
    }

    fn write_config(&mut self, offset: u32, data: &[u8]) -> Result<(), String> {
        let v = self.call(Event::WriteConfig, |h| {
            Ok(vec![h.env.number(offset as f64)?, h.env.buffer_copy(data)?])
        })?;
        self.refusal(v)
    }

    fn features_acked(&mut self, features: u64) {
        self.notify(Event::Features, |h| Ok(vec![h.env.bigint_u64(features)?]));
    }

    fn memory_changed(&mut self, memory: Option<&Arc<GuestMem>>) {
        let args = match self.memory_value(memory) {
            Ok(a) => a,
            Err(e) => {
                crate::js::vhost_user::log(&format!(
                    "cannot show the new memory table to JavaScript: {e}"
                ));
                return;
            }
        };
        if memory.is_none() {
            std::mem::take(&mut self.views).retire(self.host.env, None);
        }
        self.notify(Event::Memory, |_| Ok(args));
    }

    fn vring_started(&mut self, vring: VringStart) -> Result<(), String> {
        let i = usize::from(vring.index);
        if i >= self.rings.len() {
            return Err(format!("vring {} is out of range", vring.index));
        }
        let watch = KickWatch::start(&self.host, vring.index, vring.kick.clone())
            .map_err(|e| e.to_string())?;
        let s = vring.state;
        let words = [
            s.max_size as f64,
            s.next_avail as f64,
            s.next_used as f64,
            s.event_idx_enabled as u8 as f64,
            s.size as f64,
            s.ready as u8 as f64,
            s.desc_table as f64,
            s.avail_ring as f64,
            s.used_ring as f64,
        ];
        let v = self.call(Event::Started, |h| {
            let w = words
                .iter()
                .map(|x| h.env.number(*x))
                .collect::<crate::napi::Result<Vec<_>>>()?;
            Ok(vec![
                h.env.number(vring.index as f64)?,
                h.env.array(&w)?,
                h.env.new_external(NotifierHandle(vring.call.clone()))?,
            ])
        })?;
        self.refusal(v)?;
        self.rings[i] = Some(Running {
            _kick: watch,
            start_avail: s.next_avail,
        });
        Ok(())
    }

    fn vring_stopped(&mut self, index: u16, reason: StopReason) -> Stopped {
        let Some(running) = self
            .rings
            .get_mut(usize::from(index))
            .and_then(Option::take)
        else {
            return Stopped::Done { next_avail: 0 };
        };
        let fallback = Stopped::Done {
            next_avail: running.start_avail,
        };
        drop(running); // stops watching the kick fd
        let answer = self.call(Event::Stopped, |h| {
            Ok(vec![
                h.env.number(index as f64)?,
                h.env.number(kick::reason_number(reason))?,
            ])
        });
        match answer {
            Ok(v) => match self.host.uint_of(v, u16::MAX as u64) {
                Some(n) => Stopped::Done {
                    next_avail: n as u16,
                },
                None if self.host.env.is_nullish(v).unwrap_or(false) => Stopped::Pending,
                None => fallback,
            },
            Err(msg) => {
                kick::log(index, &format!("the device's stop handler failed: {msg}"));
                fallback
            }
        }
    }

    fn connected(&mut self) {
        self.notify(Event::Connected, |_| Ok(vec![]));
    }

    fn disconnected(&mut self, error: Option<&CoreError>) {
        self.notify(Event::Disconnected, |h| Self::error_args(h, error));
    }

    fn refused(&mut self, error: &CoreError) {
        self.notify(Event::Refused, |h| Self::error_args(h, Some(error)));
    }

    fn reset(&mut self) {
        self.notify(Event::Reset, |_| Ok(vec![]));
    }

    fn closed(&mut self) {
        for r in &mut self.rings {
            r.take();
        }
        std::mem::take(&mut self.views).retire(self.host.env, None);
        self.host.closed.set(true);
        self.notify(Event::Closed, |_| Ok(vec![]));
    }
}

impl JsDevice {
    /// A string returned by the device is a refusal with that reason.
    fn refusal(&self, v: Value) -> Result<(), String> {
        match self.host.env.type_of(v) {
            Ok(crate::napi::ValueType::String) => Err(self.host.env.string_of(v)),
            _ => Ok(()),
        }
    }
}
