//! `CareStore`: the entry point. Opens the client's device (core's
//! [`katcore::device::Device`]: the encrypted store, the pack in force, the
//! sync client and the observers) and hands out one façade per concept.

use std::path::Path;
use std::sync::Arc;

use katcore::device::Device;
use katcore::store::StoreKey;
use katcore::sync::transport::Transport;
use zeroize::Zeroize;

use crate::content::Content;
use crate::error::Result;
use crate::journal::Journal;
use crate::listeners::{CareListener, ListenerHandle};
use crate::sessions::Sessions;
use crate::sync::ClinicSync;
use crate::transport::{ForeignTransport, HttpTransport};
use crate::wellbeing::Wellbeing;

/// One client's care record in its encrypted file: open it once and share it.
///
/// Thread-safe. Calls that read or write the record are blocking but short:
/// every write is durable (on disk) when it returns, typically within a few
/// milliseconds. On Android call them from `Dispatchers.IO`, on iOS off the
/// main actor when the UI must never wait on storage.
#[derive(uniffi::Object)]
pub struct CareStore {
    device: Device,
}

#[uniffi::export]
impl CareStore {
    /// Opens the store at `path`, creating it if there is none, with the app's 32-byte
    /// `key` (keep it in the Android Keystore / iOS Keychain, never in the app's files).
    ///
    /// `transport` sends enrollment and sync requests with the app's HTTP stack
    /// (`UrlConnectionTransport` on Android, `URLSessionTransport` on iOS); without one,
    /// everything but enrollment and sync works. Re-activates the last clinic pack
    /// fetched by sync if its signature still verifies.
    ///
    /// # Errors
    /// `WrongKey` for a key that does not open the file (the file is left untouched),
    /// `InvalidKey` for a key that is not 32 bytes, `Corrupt`, `StoreTooNew` or `Storage`.
    #[uniffi::constructor(default(transport = None))]
    pub fn open(path: String, key: Vec<u8>, transport: Option<Arc<dyn HttpTransport>>) -> Result<Arc<Self>> {
        let store_key = store_key(key)?;
        let transport = transport.map(|t| Arc::new(ForeignTransport(t)) as Arc<dyn Transport>);
        let device = Device::open(Path::new(&path), &store_key, transport)?;
        Ok(Arc::new(CareStore { device }))
    }

    /// The clinic's content: guidelines, checklist questions, side effects, questionnaires, crisis contacts.
    pub fn content(&self) -> Arc<Content> {
        Arc::new(Content { device: self.device.clone() })
    }

    /// Sessions: scheduling, the pre-session checklist, start and end, aftercare.
    pub fn sessions(&self) -> Arc<Sessions> {
        Arc::new(Sessions { device: self.device.clone() })
    }

    /// The journal, shared and private, and the integration prompts due.
    pub fn journal(&self) -> Arc<Journal> {
        Arc::new(Journal { device: self.device.clone() })
    }

    /// Vitals, side effects and check-ins.
    pub fn wellbeing(&self) -> Arc<Wellbeing> {
        Arc::new(Wellbeing { device: self.device.clone() })
    }

    /// Enrollment with the clinic and sync.
    pub fn sync(&self) -> Arc<ClinicSync> {
        Arc::new(ClinicSync { device: self.device.clone() })
    }

    /// Registers `listener` for record and sync-status changes until the returned handle
    /// is cancelled or dropped.
    pub fn add_listener(&self, listener: Arc<dyn CareListener>) -> Arc<ListenerHandle> {
        Arc::new(crate::listeners::register(&self.device, listener))
    }
}

/// The app's key bytes as a store key; the bytes are wiped either way.
pub(crate) fn store_key(mut key: Vec<u8>) -> Result<StoreKey> {
    let store_key = StoreKey::from_bytes(&key);
    key.zeroize();
    Ok(store_key?)
}
