//! Where limit state lives: a small key-value store with compare-and-swap, the shape of
//! Envoy's shared data (`proxy/` implements it over `get_shared_data`/`set_shared_data`,
//! which every worker's VM sees). Counters change only through `update`, a CAS retry loop,
//! so two workers racing on one counter never lose an update.
//!
//! Envoy's semantics, mirrored by `MemoryStore`: a CAS token of `None` (0 on the wire) writes
//! unconditionally, and writing a key that does not exist always succeeds. So every key is
//! created before traffic (`ensure`, from the root context) and later writes carry a token.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The CAS token no longer matches: someone else wrote the key since it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict;

pub trait Store {
    /// The value and its CAS token; `None` when the key was never written.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes `value` if the key still carries `cas` (`None`: unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Conflict>;
}

/// What `update` should do with the value it read.
pub enum Change<T> {
    Write(Vec<u8>, T),
    Keep(T),
}

/// Every CAS attempt lost to other writers, over and over: refuse rather than spin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Attempts before `update` gives up. Each attempt is one get and one set (microseconds);
/// losing this many times in a row needs another writer to finish inside every one of them,
/// which only happens to a thread the OS keeps preempting between its get and its set. The
/// bound is generous so such a thread retries rather than failing the request.
pub const MAX_ATTEMPTS: usize = 1024;

/// Reads the key, lets `change` decide from the value (`None`: never written), and writes
/// the new value with the token it read; on a conflict, reads again and re-decides.
pub fn update<T>(
    store: &dyn Store,
    key: &str,
    mut change: impl FnMut(Option<&[u8]>) -> Change<T>,
) -> Result<T, Busy> {
    for _ in 0..MAX_ATTEMPTS {
        let current = store.get(key);
        let (value, cas) = match &current {
            Some((bytes, cas)) => (Some(bytes.as_slice()), Some(*cas)),
            None => (None, None),
        };
        match change(value) {
            Change::Keep(out) => return Ok(out),
            Change::Write(new, out) => {
                if store.set(key, &new, cas).is_ok() {
                    return Ok(out);
                }
            }
        }
    }
    Err(Busy)
}

/// Creates the key with `initial` unless it exists (called before traffic).
pub fn ensure(store: &dyn Store, key: &str, initial: &[u8]) {
    if store.get(key).is_none() {
        // Several workers may do this at once; they all write the same initial value.
        let _ = store.set(key, initial, None);
    }
}

/// Fixed-size records of little-endian u64 fields, the format of every stored value.
pub fn encode<const N: usize>(fields: [u64; N]) -> Vec<u8> {
    fields.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// The fields of a record; `None` for a missing or foreign value (then the state starts over).
pub fn decode<const N: usize>(bytes: Option<&[u8]>) -> Option<[u64; N]> {
    let bytes = bytes?;
    if bytes.len() != N * 8 {
        return None;
    }
    let mut fields = [0u64; N];
    for (field, chunk) in fields.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *field = u64::from_le_bytes(word);
    }
    Some(fields)
}

/// An in-process store with Envoy's shared-data semantics, for tests and the native build.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    entries: HashMap<String, (Vec<u8>, u32)>,
    last_cas: u32,
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.entries.get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Conflict> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Tokens are never 0 (0 means "no check" on the wire).
        state.last_cas = state.last_cas.wrapping_add(1).max(1);
        let next = state.last_cas;
        match state.entries.get_mut(key) {
            Some(entry) => {
                if cas.is_some_and(|c| c != entry.1) {
                    return Err(Conflict);
                }
                *entry = (value.to_vec(), next);
            }
            None => {
                state.entries.insert(key.to_owned(), (value.to_vec(), next));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;
    use std::cell::RefCell;

    fn increment(store: &dyn Store, key: &str) -> u64 {
        update(store, key, |bytes| {
            let [n] = decode(bytes).unwrap_or([0]);
            Change::Write(encode([n + 1]), n + 1)
        })
        .unwrap()
    }

    fn read(store: &dyn Store, key: &str) -> u64 {
        decode::<1>(store.get(key).map(|(b, _)| b).as_deref()).unwrap()[0]
    }

    type OtherWorker<'a> = Box<dyn FnOnce(&MemoryStore) + 'a>;

    /// A store whose next `set` is preceded by another worker's complete update of the same
    /// key: the classic lost-update interleaving (A reads, B reads and writes, A writes).
    struct Interleaved<'a> {
        inner: &'a MemoryStore,
        other_worker: RefCell<Option<OtherWorker<'a>>>,
    }

    impl Store for Interleaved<'_> {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Conflict> {
            if let Some(other) = self.other_worker.borrow_mut().take() {
                other(self.inner);
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn interleaved_workers_lose_no_update() {
        let shared = MemoryStore::default();
        ensure(&shared, "n", &encode([0]));
        let worker_a = Interleaved {
            inner: &shared,
            other_worker: RefCell::new(Some(Box::new(|s: &MemoryStore| {
                increment(s, "n");
            }))),
        };
        // A read 0 and wants to write 1, but B wrote 1 in between: A's CAS fails, A re-reads
        // and writes 2.
        assert_eq!(increment(&worker_a, "n"), 2);
        assert_eq!(read(&shared, "n"), 2);
    }

    #[test]
    fn blind_writes_would_lose_it() {
        // The same interleaving without CAS tokens shows what `update` protects against.
        let shared = MemoryStore::default();
        ensure(&shared, "n", &encode([0]));
        let a_read = read(&shared, "n");
        increment(&shared, "n");
        shared.set("n", &encode([a_read + 1]), None).unwrap();
        assert_eq!(read(&shared, "n"), 1);
    }

    #[test]
    fn stale_tokens_conflict_and_keep_leaves_the_value() {
        let s = MemoryStore::default();
        ensure(&s, "k", &encode([7]));
        let (_, cas) = s.get("k").unwrap();
        ensure(&s, "k", &encode([0]));
        assert_eq!(read(&s, "k"), 7, "ensure never overwrites");
        s.set("k", &encode([8]), Some(cas)).unwrap();
        assert_eq!(s.set("k", &encode([9]), Some(cas)), Err(Conflict));
        let seen = update(&s, "k", |b| Change::Keep(decode::<1>(b))).unwrap();
        assert_eq!(seen, Some([8]));
    }

    #[test]
    fn gives_up_when_it_always_loses() {
        struct AlwaysLoses;
        impl Store for AlwaysLoses {
            fn get(&self, _: &str) -> Option<(Vec<u8>, u32)> {
                Some((encode([0]), 1))
            }
            fn set(&self, _: &str, _: &[u8], _: Option<u32>) -> Result<(), Conflict> {
                Err(Conflict)
            }
        }
        let r = update(&AlwaysLoses, "k", |_| Change::Write(encode([1]), ()));
        assert_eq!(r, Err(Busy));
    }

    #[test]
    fn records_round_trip() {
        let bytes = encode([1, u64::MAX, 42]);
        assert_eq!(decode::<3>(Some(&bytes)), Some([1, u64::MAX, 42]));
        assert_eq!(decode::<2>(Some(&bytes)), None);
        assert_eq!(decode::<1>(None), None);
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn threads_hammering_one_counter_lose_nothing() {
        // Every update that reports success is in the final count. (Under this tight loop a
        // thread the OS keeps preempting may give up with `Busy`; that changes nothing.)
        let s = std::sync::Arc::new(MemoryStore::default());
        ensure(s.as_ref(), "n", &encode([0]));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let add = |bytes: Option<&[u8]>| {
                        let [n] = decode(bytes).unwrap_or([0]);
                        Change::Write(encode([n + 1]), ())
                    };
                    (0..2000)
                        .filter(|_| update(s.as_ref(), "n", add).is_ok())
                        .count() as u64
                })
            })
            .collect();
        let succeeded: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        assert!(succeeded > 4000, "{succeeded}");
        assert_eq!(read(s.as_ref(), "n"), succeeded);
    }
}
