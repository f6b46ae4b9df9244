//! `CareStore`: the entry point. Opens the encrypted store and hands out one
//! façade per concept (content, sessions, journal, wellbeing, sync).
//!
//! Every façade shares one [`Inner`]: the core store, the pack registry, the
//! sync client and the listeners. Writes go through [`Inner::update`], which
//! persists the change and then tells the listeners.

use std::path::Path;
use std::sync::{Arc, RwLock};

use katcore::care_store::CareStore as CoreCareStore;
use katcore::pack::{Pack, PackRegistry, TrustedKeys};
use katcore::record::{CareRecord, RecordError};
use katcore::store::StoreKey;
use katcore::sync::{restore_saved_pack, SyncClient};
use zeroize::Zeroize;

use crate::content::Content;
use crate::error::Result;
use crate::journal::Journal;
use crate::listeners::{CareChange, CareListener, ListenerHandle, Listeners};
use crate::sessions::Sessions;
use crate::sync::ClinicSync;
use crate::transport::{ForeignTransport, HttpTransport, NoTransport};
use crate::wellbeing::Wellbeing;

/// One client's care record in its encrypted file: open it once and share it.
///
/// Thread-safe. Calls that read or write the record are blocking but short:
/// every write is durable (on disk) when it returns, typically within a few
/// milliseconds. On Android call them from `Dispatchers.IO`, on iOS off the
/// main actor when the UI must never wait on storage.
#[derive(uniffi::Object)]
pub struct CareStore {
    inner: Arc<Inner>,
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
        let mut key = key;
        let store_key = StoreKey::from_bytes(&key);
        key.zeroize();
        let store = CoreCareStore::open(Path::new(&path), &store_key?)?;
        let packs = Arc::new(RwLock::new(PackRegistry::new(TrustedKeys::default())));
        restore_saved_pack(&store, &packs)?;
        let transport = transport.map(ForeignTransport);
        let sync = match &transport {
            Some(transport) => SyncClient::new(store.clone(), transport.clone(), Arc::clone(&packs)),
            None => SyncClient::new(store.clone(), NoTransport, Arc::clone(&packs)),
        };
        let inner = Inner { store, packs, transport, sync, listeners: Arc::default() };
        Ok(Arc::new(CareStore { inner: Arc::new(inner) }))
    }

    /// The clinic's content: guidelines, checklist questions, side effects, questionnaires, crisis contacts.
    pub fn content(&self) -> Arc<Content> {
        Arc::new(Content::new(Arc::clone(&self.inner)))
    }

    /// Sessions: scheduling, the pre-session checklist, start and end, aftercare.
    pub fn sessions(&self) -> Arc<Sessions> {
        Arc::new(Sessions::new(Arc::clone(&self.inner)))
    }

    /// The journal, shared and private, and the integration prompts due.
    pub fn journal(&self) -> Arc<Journal> {
        Arc::new(Journal::new(Arc::clone(&self.inner)))
    }

    /// Vitals, side effects and check-ins.
    pub fn wellbeing(&self) -> Arc<Wellbeing> {
        Arc::new(Wellbeing::new(Arc::clone(&self.inner)))
    }

    /// Enrollment with the clinic and sync.
    pub fn sync(&self) -> Arc<ClinicSync> {
        Arc::new(ClinicSync::new(Arc::clone(&self.inner)))
    }

    /// Registers `listener` for record and sync-status changes until the returned handle
    /// is cancelled or dropped.
    pub fn add_listener(&self, listener: Arc<dyn CareListener>) -> Arc<ListenerHandle> {
        Arc::new(self.inner.listeners.add(listener))
    }
}

/// What every façade of one store shares.
pub(crate) struct Inner {
    pub(crate) store: CoreCareStore,
    pub(crate) packs: Arc<RwLock<PackRegistry>>,
    /// The app's HTTP transport, if it gave one.
    pub(crate) transport: Option<ForeignTransport>,
    pub(crate) sync: SyncClient,
    pub(crate) listeners: Arc<Listeners>,
}

impl Inner {
    /// The pack in force.
    pub(crate) fn pack(&self) -> Arc<Pack> {
        self.packs.read().unwrap_or_else(|poisoned| poisoned.into_inner()).active()
    }

    /// Reads the record.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&CareRecord) -> R) -> R {
        self.store.read(f)
    }

    /// Applies and persists one change, then tells the listeners what changed.
    pub(crate) fn update<R>(
        &self,
        change: CareChange,
        f: impl FnOnce(&mut CareRecord) -> std::result::Result<R, RecordError>,
    ) -> Result<R> {
        let result = self.store.update(f)?;
        self.changed(change);
        Ok(result)
    }

    /// Tells the listeners that `change` happened; the pending count of the sync status moved too.
    pub(crate) fn changed(&self, change: CareChange) {
        self.listeners.each(|listener| listener.on_record_changed(change));
        self.sync_status_changed();
    }

    /// Tells the listeners the current sync status.
    pub(crate) fn sync_status_changed(&self) {
        if !self.listeners.is_empty() {
            let status = crate::sync::SyncStatus::from(self.sync.status());
            self.listeners.each(|listener| listener.on_sync_status_changed(status.clone()));
        }
    }
}
